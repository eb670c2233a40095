//! `--reload`: the master polls the modification times of the app's .py files once a
//! second and reports a change. Virtualenvs, caches and hidden folders are skipped.
//! `--reload-extra-file` adds files of any kind; one with `*`, `?` or `[` is a glob
//! pattern, expanded again at every scan (so a file made later is watched too), as
//! gunicorn reads them.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

const SCAN_EVERY: Duration = Duration::from_secs(1);
/// A tree larger than this is not watched past this many files (and the log says so).
const MAX_FILES: usize = 20_000;

pub struct SourceWatcher {
    roots: Vec<PathBuf>,
    extra: Vec<PathBuf>,
    seen: HashMap<PathBuf, SystemTime>,
    last_scan: Instant,
}

impl SourceWatcher {
    pub fn new(roots: Vec<PathBuf>, extra: Vec<PathBuf>) -> SourceWatcher {
        let seen = scan(&roots, &extra);
        if seen.len() >= MAX_FILES {
            crate::log_info!("--reload watches only the first {MAX_FILES} .py files");
        }
        SourceWatcher {
            roots,
            extra,
            seen,
            last_scan: Instant::now(),
        }
    }

    /// A file that was added, removed or modified since the last call (at most one scan a
    /// second).
    pub fn changed(&mut self) -> Option<PathBuf> {
        if self.last_scan.elapsed() < SCAN_EVERY {
            return None;
        }
        self.last_scan = Instant::now();
        let now = scan(&self.roots, &self.extra);
        let changed = now
            .iter()
            .find(|(path, modified)| self.seen.get(*path) != Some(modified))
            .map(|(path, _)| path.clone())
            .or_else(|| {
                self.seen
                    .keys()
                    .find(|path| !now.contains_key(*path))
                    .cloned()
            });
        self.seen = now;
        changed
    }
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

fn scan(roots: &[PathBuf], extra: &[PathBuf]) -> HashMap<PathBuf, SystemTime> {
    let mut found = HashMap::new();
    for entry in extra {
        let text = entry.to_string_lossy();
        if text.contains(['*', '?', '[']) {
            let matched = glob::glob(&text).into_iter().flatten().flatten();
            for path in matched {
                let time = modified(&path);
                found.insert(path, time);
            }
        } else if entry.exists() {
            found.insert(entry.clone(), modified(entry));
        }
    }
    let mut pending: Vec<PathBuf> = roots.to_vec();
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if found.len() >= MAX_FILES {
                return found;
            }
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() && !skipped_dir(&path) {
                pending.push(path);
            } else if kind.is_file() && path.extension().is_some_and(|e| e == "py") {
                let modified = modified(&path);
                found.insert(path, modified);
            }
        }
    }
    found
}

fn skipped_dir(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.starts_with('.')
        || matches!(
            name,
            "__pycache__" | "node_modules" | "site-packages" | "target"
        )
        || path.join("pyvenv.cfg").exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_edits_additions_and_removals() {
        let dir = std::env::temp_dir().join(format!("wsgihost-reload-{}", std::process::id()));
        std::fs::create_dir_all(dir.join(".venv")).unwrap();
        std::fs::write(dir.join("a.py"), "x = 1").unwrap();
        std::fs::write(dir.join(".venv/ignored.py"), "").unwrap();
        std::fs::write(dir.join("page.html"), "<p>").unwrap();
        let pattern = dir.join("*.txt");
        let mut watcher =
            SourceWatcher::new(vec![dir.clone()], vec![dir.join("page.html"), pattern]);
        assert_eq!(watcher.seen.len(), 2);
        watcher.last_scan -= SCAN_EVERY;
        assert_eq!(watcher.changed(), None);
        std::fs::write(dir.join("b.py"), "").unwrap();
        watcher.last_scan -= SCAN_EVERY;
        assert_eq!(watcher.changed(), Some(dir.join("b.py")));
        std::fs::remove_file(dir.join("b.py")).unwrap();
        watcher.last_scan -= SCAN_EVERY;
        assert_eq!(watcher.changed(), Some(dir.join("b.py")));
        std::fs::write(dir.join("notes.txt"), "").unwrap();
        watcher.last_scan -= SCAN_EVERY;
        assert_eq!(watcher.changed(), Some(dir.join("notes.txt")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
