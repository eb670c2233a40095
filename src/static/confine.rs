//! Confinement: a decoded URL path maps to a file inside its root and nowhere else (no
//! `..`, NULs, backslashes, hidden names, or symlinks leading out).
use std::fs::{File, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

#[derive(Debug, PartialEq, Eq)]
pub enum Resolved {
    File(PathBuf),
    /// A directory asked for without its trailing slash.
    AddSlash,
    NotFound,
    Forbidden,
}

/// Maps a decoded URL path below the mount to a file inside `root` (canonical).
pub fn resolve(root: &Path, rest: &[u8]) -> Resolved {
    let Some(relative) = relative_path(rest) else {
        return Resolved::NotFound;
    };
    let Ok(real) = root.join(relative).canonicalize() else {
        return Resolved::NotFound;
    };
    if !real.starts_with(root) {
        return Resolved::Forbidden;
    }
    if real.is_dir() {
        if !rest.ends_with(b"/") {
            return Resolved::AddSlash;
        }
        return match real.join("index.html").canonicalize() {
            Ok(index) if index.starts_with(root) && index.is_file() => Resolved::File(index),
            Ok(_) => Resolved::Forbidden,
            Err(_) => Resolved::NotFound,
        };
    }
    if real.is_file() {
        Resolved::File(real)
    } else {
        Resolved::NotFound
    }
}

/// The path below the root that a decoded URL path names: no NULs, backslashes, `..` or
/// hidden names (but `.well-known`). None when the path is refused.
pub(super) fn relative_path(rest: &[u8]) -> Option<PathBuf> {
    if rest.contains(&0) || rest.contains(&b'\\') {
        return None;
    }
    let mut path = PathBuf::new();
    for segment in rest.split(|&b| b == b'/') {
        match segment {
            b"" | b"." => {}
            b".." => return None,
            hidden if hidden.starts_with(b".") && hidden != b".well-known" => return None,
            name => path.push(std::ffi::OsStr::from_bytes(name)),
        }
    }
    Some(path)
}

/// A static file found and opened, with its path below the root (for its MIME type).
pub enum Opened {
    File {
        file: File,
        path: PathBuf,
        meta: Box<Metadata>,
    },
    AddSlash,
    NotFound,
    Forbidden,
}

/// Opens what `rest` names under `root`. With openat2(RESOLVE_BENEATH) the kernel keeps
/// the whole lookup, symlinks included, inside the root in one system call; where openat2
/// is missing (old kernels, seccomp), `resolve` canonicalizes instead.
pub fn open(root: &Path, rest: &[u8]) -> Opened {
    let Some(relative) = relative_path(rest) else {
        return Opened::NotFound;
    };
    let file = match beneath::open(root, &relative) {
        None => return open_after_resolve(root, rest),
        Some(Err(err)) => return refusal(&err),
        Some(Ok(file)) => file,
    };
    let Ok(meta) = file.metadata() else {
        return Opened::NotFound;
    };
    if meta.is_file() {
        return Opened::File {
            file,
            path: relative,
            meta: Box::new(meta),
        };
    }
    if !meta.is_dir() {
        return Opened::NotFound;
    }
    if !rest.ends_with(b"/") {
        return Opened::AddSlash;
    }
    let index = relative.join("index.html");
    match beneath::open(root, &index) {
        Some(Ok(file)) => match file.metadata() {
            Ok(meta) if meta.is_file() => Opened::File {
                file,
                path: index,
                meta: Box::new(meta),
            },
            _ => Opened::NotFound,
        },
        Some(Err(err)) => refusal(&err),
        None => Opened::NotFound,
    }
}

fn open_after_resolve(root: &Path, rest: &[u8]) -> Opened {
    match resolve(root, rest) {
        Resolved::File(path) => match File::open(&path).and_then(|f| Ok((f.metadata()?, f))) {
            Ok((meta, file)) => Opened::File {
                file,
                path,
                meta: Box::new(meta),
            },
            Err(_) => Opened::NotFound,
        },
        Resolved::AddSlash => Opened::AddSlash,
        Resolved::NotFound => Opened::NotFound,
        Resolved::Forbidden => Opened::Forbidden,
    }
}

/// A lookup that would leave the root (EXDEV) or loops (ELOOP) is forbidden; the rest is
/// simply not there.
fn refusal(err: &std::io::Error) -> Opened {
    match err.raw_os_error() {
        Some(libc::EXDEV) | Some(libc::ELOOP) | Some(libc::EACCES) => Opened::Forbidden,
        _ => Opened::NotFound,
    }
}

/// openat2(2) below a root directory whose O_PATH handle is opened once and kept.
pub(super) mod beneath {
    use std::collections::HashMap;
    use std::ffi::CString;
    use std::fs::File;
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{OnceLock, RwLock};

    static UNSUPPORTED: AtomicBool = AtomicBool::new(false);
    static ROOTS: OnceLock<RwLock<HashMap<PathBuf, OwnedFd>>> = OnceLock::new();

    /// The root's directory handle, once a confined open has been made below it.
    pub fn root_fd(root: &Path) -> Option<RawFd> {
        if UNSUPPORTED.load(Ordering::Relaxed) {
            return None;
        }
        let roots = ROOTS.get()?.read().ok()?;
        roots.get(root).map(|fd| fd.as_raw_fd())
    }

    /// None: openat2 is not available here (use the fallback).
    pub fn open(root: &Path, relative: &Path) -> Option<io::Result<File>> {
        if UNSUPPORTED.load(Ordering::Relaxed) {
            return None;
        }
        let roots = ROOTS.get_or_init(Default::default);
        let cached = roots.read().ok()?.get(root).map(|fd| fd.as_raw_fd());
        let dir = match cached {
            Some(fd) => fd,
            None => {
                let handle = match File::open(root) {
                    Ok(file) => OwnedFd::from(file),
                    Err(err) => return Some(Err(err)),
                };
                // Entries are never removed, so the descriptor outlives every use.
                roots
                    .write()
                    .ok()?
                    .entry(root.to_path_buf())
                    .or_insert(handle)
                    .as_raw_fd()
            }
        };
        let name = if relative.as_os_str().is_empty() {
            Path::new(".")
        } else {
            relative
        };
        let name = CString::new(name.as_os_str().as_bytes()).ok()?;
        // SAFETY: open_how is plain data; all-zero is its documented empty value.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        // O_NONBLOCK: opening a FIFO someone left in the folder must not hang.
        how.flags = (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK) as u64;
        how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
        // SAFETY: valid directory fd, NUL-terminated path and a correctly sized open_how.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir,
                name.as_ptr(),
                &how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd >= 0 {
            // SAFETY: the kernel just returned this descriptor to us.
            return Some(Ok(unsafe { File::from_raw_fd(fd as i32) }));
        }
        let err = io::Error::last_os_error();
        if matches!(
            err.raw_os_error(),
            Some(libc::ENOSYS) | Some(libc::EPERM) | Some(libc::EINVAL)
        ) {
            UNSUPPORTED.store(true, Ordering::Relaxed);
            return None;
        }
        Some(Err(err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempdir::Dir, PathBuf) {
        let dir = tempdir::Dir::new();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("index.html"), "home").unwrap();
        std::fs::write(root.join("sub/index.html"), "sub").unwrap();
        std::fs::write(root.join("a.txt"), "a").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "secret").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("leak.txt")).unwrap();
        let root = root.canonicalize().unwrap();
        (dir, root)
    }

    /// A throwaway directory removed on drop (std only, no extra crate for tests).
    mod tempdir {
        pub struct Dir(std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                static COUNT: std::sync::atomic::AtomicUsize =
                    std::sync::atomic::AtomicUsize::new(0);
                let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let path =
                    std::env::temp_dir().join(format!("wsgihost-test-{}-{n}", std::process::id()));
                std::fs::create_dir_all(&path).unwrap();
                Dir(path)
            }
            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn maps_files_and_indexes() {
        let (_dir, root) = tree();
        assert_eq!(
            resolve(&root, b"/"),
            Resolved::File(root.join("index.html"))
        );
        assert_eq!(
            resolve(&root, b"/a.txt"),
            Resolved::File(root.join("a.txt"))
        );
        assert_eq!(
            resolve(&root, b"/sub/"),
            Resolved::File(root.join("sub/index.html"))
        );
        assert_eq!(resolve(&root, b"/sub"), Resolved::AddSlash);
        assert_eq!(resolve(&root, b"/missing"), Resolved::NotFound);
    }

    #[test]
    fn never_escapes_the_root() {
        let (_dir, root) = tree();
        for attack in [
            &b"/../secret.txt"[..],
            b"/sub/../../secret.txt",
            b"/..\\secret.txt",
            b"/a.txt\0",
            b"/.hidden",
        ] {
            assert_eq!(
                resolve(&root, attack),
                Resolved::NotFound,
                "{:?}",
                String::from_utf8_lossy(attack)
            );
        }
        assert_eq!(resolve(&root, b"/leak.txt"), Resolved::Forbidden);
    }

    #[test]
    fn open_agrees_with_resolve() {
        let (_dir, root) = tree();
        let opened = |rest: &[u8]| match open(&root, rest) {
            Opened::File { path, .. } => format!("file {}", path.display()),
            Opened::AddSlash => "slash".into(),
            Opened::NotFound => "missing".into(),
            Opened::Forbidden => "forbidden".into(),
        };
        assert_eq!(opened(b"/"), "file index.html");
        assert_eq!(opened(b"/a.txt"), "file a.txt");
        assert_eq!(opened(b"/sub/"), "file sub/index.html");
        assert_eq!(opened(b"/sub"), "slash");
        assert_eq!(opened(b"/missing"), "missing");
        assert_eq!(opened(b"/../secret.txt"), "missing");
        assert_eq!(opened(b"/leak.txt"), "forbidden");
    }
}
