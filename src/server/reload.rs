//! `--reload`: the master polls the modification times of the app's .py files once a
//! second and reports a change. Virtualenvs, caches and hidden folders are skipped.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

const SCAN_EVERY: Duration = Duration::from_secs(1);
/// A tree larger than this is not watched past this many files (and the log says so).
const MAX_FILES: usize = 20_000;

pub struct SourceWatcher {
    roots: Vec<PathBuf>,
    seen: HashMap<PathBuf, SystemTime>,
    last_scan: Instant,
}

impl SourceWatcher {
    pub fn new(roots: Vec<PathBuf>) -> SourceWatcher {
        let seen = scan(&roots);
        if seen.len() >= MAX_FILES {
            crate::log_info!("--reload watches only the first {MAX_FILES} .py files");
        }
        SourceWatcher {
            roots,
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
        let now = scan(&self.roots);
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

fn scan(roots: &[PathBuf]) -> HashMap<PathBuf, SystemTime> {
    let mut found = HashMap::new();
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
                let modified = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
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
        let mut watcher = SourceWatcher::new(vec![dir.clone()]);
        assert_eq!(watcher.seen.len(), 1);
        watcher.last_scan -= SCAN_EVERY;
        assert_eq!(watcher.changed(), None);
        std::fs::write(dir.join("b.py"), "").unwrap();
        watcher.last_scan -= SCAN_EVERY;
        assert_eq!(watcher.changed(), Some(dir.join("b.py")));
        std::fs::remove_file(dir.join("b.py")).unwrap();
        watcher.last_scan -= SCAN_EVERY;
        assert_eq!(watcher.changed(), Some(dir.join("b.py")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
