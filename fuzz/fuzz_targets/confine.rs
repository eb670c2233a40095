//! Path decoding and confinement: whatever URL path arrives, a static file that is served
//! is inside the root (symlinks to the outside, `..`, encoded separators, NULs and
//! backslashes included), with openat2 and with the canonicalizing fallback.
#![no_main]
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use wsgihost::route::decode_path;
use wsgihost::static_files::{Opened, Resolved, open, resolve};

/// root/ with files, a subfolder and symlinks in and out; secret.txt beside it.
fn root() -> &'static PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("wsgihost-fuzz-{}", std::process::id()));
        let root = base.join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(base.join("secret.txt"), "secret").unwrap();
        std::fs::write(root.join("index.html"), "home").unwrap();
        std::fs::write(root.join("a.txt"), "a").unwrap();
        std::fs::write(root.join("sub/index.html"), "sub").unwrap();
        let links = [
            ("in.txt", "a.txt"),
            ("out.txt", "../secret.txt"),
            ("parent", ".."),
            ("etc", "/etc"),
            ("sub/up", "../.."),
        ];
        for (link, target) in links {
            let _ = std::os::unix::fs::symlink(target, root.join(link));
        }
        root.canonicalize().unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let root = root();
    let path = decode_path(data);
    if let Opened::File { file, .. } = open(root, &path) {
        let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).unwrap();
        assert!(
            real.starts_with(root),
            "{:?} served {real:?}",
            String::from_utf8_lossy(data)
        );
    }
    if let Resolved::File(real) = resolve(root, &path) {
        assert!(
            real.starts_with(root),
            "{:?} resolved to {real:?}",
            String::from_utf8_lossy(data)
        );
    }
});
