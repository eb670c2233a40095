//! `wsgi.file_wrapper(filelike, blksize=8192)`. Iterating it reads `blksize` blocks; when the
//! app returns one around a real file, the server sends it with sendfile(2) instead.
use pyo3::prelude::*;
use pyo3::types::PyBytes;

#[pyclass(frozen, module = "wsgihost")]
pub struct FileWrapper {
    pub filelike: Py<PyAny>,
    pub blksize: usize,
}

#[pymethods]
impl FileWrapper {
    #[new]
    #[pyo3(signature = (filelike, blksize = 8192))]
    fn new(filelike: Py<PyAny>, blksize: usize) -> Self {
        FileWrapper {
            filelike,
            blksize: blksize.max(1),
        }
    }

    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let block = self
            .filelike
            .bind(py)
            .call_method1("read", (self.blksize,))?;
        let empty = block
            .cast::<PyBytes>()
            .is_ok_and(|b| b.as_bytes().is_empty())
            || block.is_empty()?;
        Ok((!empty).then_some(block))
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let filelike = self.filelike.bind(py);
        if filelike.hasattr("close")? {
            filelike.call_method0("close")?;
        }
        Ok(())
    }
}

/// Where a wrapped file's remaining bytes are, when it is a regular file on disk.
pub struct FileRegion {
    pub fd: i32,
    pub offset: i64,
    pub len: u64,
}

impl FileWrapper {
    /// The file descriptor, current position and remaining length of the wrapped object,
    /// or None when it is not a regular file (then it is iterated instead).
    pub fn region(&self, py: Python<'_>) -> Option<FileRegion> {
        let filelike = self.filelike.bind(py);
        let fd: i32 = filelike.call_method0("fileno").ok()?.extract().ok()?;
        let offset: i64 = match filelike.call_method0("tell") {
            Ok(pos) => pos.extract().ok()?,
            // SAFETY: lseek only reads the position of a descriptor the file object owns
            // (a stale number gives EBADF, and -1 is refused below).
            Err(_) => unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) },
        };
        // SAFETY: an all-zero stat is a valid value of this plain C struct.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat writes into a buffer we own; the descriptor is the file object's.
        if offset < 0 || unsafe { libc::fstat(fd, &mut stat) } != 0 {
            return None;
        }
        if stat.st_mode & libc::S_IFMT != libc::S_IFREG {
            return None;
        }
        let len = (stat.st_size - offset).max(0) as u64;
        Some(FileRegion { fd, offset, len })
    }
}
