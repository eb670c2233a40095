//! Small static files kept in memory. A hit costs one stat of the path instead of open,
//! stat, send, sendfile and close; the entry is used only while the file found there is
//! still the very file that was read (same device, inode, size, modification and change
//! times), so an edit, a replacement or a symlink swapped in is seen at once. Entries are
//! created only from files opened with the root's confinement, never from the stat.
use std::collections::HashMap;
use std::ffi::CString;
use std::fs::Metadata;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::SystemTime;

/// Largest file kept in memory.
pub const MAX_FILE: u64 = 16 * 1024;
/// Most files kept per worker (so at most 16 MiB); when full, the cache starts over.
const MAX_ENTRIES: usize = 1024;

/// Seconds a file must have stayed unchanged before it is cached (see `settled`).
const SETTLE_SECONDS: i64 = 2;

/// What identifies one version of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    device: u64,
    inode: u64,
    size: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl Identity {
    fn of(stat: &libc::stat) -> Identity {
        Identity {
            device: stat.st_dev,
            inode: stat.st_ino,
            size: stat.st_size as u64,
            modified: (stat.st_mtime, stat.st_mtime_nsec),
            changed: (stat.st_ctime, stat.st_ctime_nsec),
        }
    }

    /// Whether the file last changed long enough ago to be cached. File times advance in
    /// clock ticks of a few milliseconds, so an edit within the tick of the last one could
    /// keep size and times unchanged; a file changed within the last second is served
    /// from disk until it has settled.
    pub fn settled(&self) -> bool {
        let now = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        now - self.changed.0 >= SETTLE_SECONDS
    }

    /// The identity of an opened file, from the metadata already read for it.
    pub fn of_metadata(meta: &Metadata) -> Identity {
        Identity {
            device: meta.dev(),
            inode: meta.ino(),
            size: meta.size(),
            modified: (meta.mtime(), meta.mtime_nsec()),
            changed: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// A file's validators and the response header lines that describe it.
#[derive(Clone)]
pub struct FileInfo {
    pub size: u64,
    pub modified: SystemTime,
    pub etag: String,
    pub headers: Vec<u8>,
}

/// One file in memory.
pub struct CachedFile {
    pub identity: Identity,
    pub info: FileInfo,
    pub body: Vec<u8>,
}

type Key = (PathBuf, PathBuf);

fn entries() -> &'static RwLock<HashMap<Key, Arc<CachedFile>>> {
    static ENTRIES: OnceLock<RwLock<HashMap<Key, Arc<CachedFile>>>> = OnceLock::new();
    ENTRIES.get_or_init(Default::default)
}

/// The cached file at `relative` below `root` (whose directory handle is `root_fd`), if
/// the file there is still the one cached.
pub fn lookup(root: &Path, root_fd: RawFd, relative: &Path) -> Option<Arc<CachedFile>> {
    let key = (root.to_path_buf(), relative.to_path_buf());
    let entry = entries().read().ok()?.get(&key).cloned()?;
    let name = CString::new(relative.as_os_str().as_bytes()).ok()?;
    // SAFETY: an all-zero stat is a valid value of this plain C struct.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: an open directory descriptor (kept for the process's life), a NUL-terminated
    // path and a stat buffer we own.
    let done = unsafe { libc::fstatat(root_fd, name.as_ptr(), &mut stat, 0) };
    (done == 0 && Identity::of(&stat) == entry.identity).then_some(entry)
}

/// Keeps a file read through a confined open.
pub fn insert(root: &Path, relative: &Path, file: Arc<CachedFile>) {
    let Ok(mut entries) = entries().write() else {
        return;
    };
    if entries.len() >= MAX_ENTRIES {
        entries.clear();
    }
    entries.insert((root.to_path_buf(), relative.to_path_buf()), file);
}
