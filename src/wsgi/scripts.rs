//! Drop-in scripts: `<scripts>/NAME.py` loaded on first use and again whenever the file's
//! modification time or size changes, so editing a script and reloading the page runs the
//! new code.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use pyo3::prelude::*;

use super::errors::format_traceback;
use super::interpreter::loader;

/// Why a script cannot serve a request.
pub enum ScriptError {
    /// No such script file in the folder: 404.
    Missing,
    /// The script failed to load (syntax error, import error, no `application`): 500.
    Broken { traceback: String },
}

struct Loaded {
    modified: SystemTime,
    len: u64,
    application: Py<PyAny>,
}

pub struct ScriptCache {
    dir: PathBuf,
    loaded: Mutex<HashMap<String, Loaded>>,
}

impl ScriptCache {
    /// `dir` need not exist yet; scripts are looked up in it at request time.
    pub fn new(dir: &Path) -> ScriptCache {
        ScriptCache {
            dir: std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf()),
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// The application of script `name` (e.g. `ctime.py`), loading or reloading it as
    /// needed. Only regular files directly in the folder count; symlinks leading outside
    /// it do not.
    pub fn application(&self, py: Python<'_>, name: &str) -> Result<Py<PyAny>, ScriptError> {
        let path = self.locate(name).ok_or(ScriptError::Missing)?;
        let meta = std::fs::metadata(&path).map_err(|_| ScriptError::Missing)?;
        let (modified, len) = (
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
        );
        {
            // The lock is never held while Python runs: loading may release the GIL.
            let loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(entry) = loaded.get(name)
                && entry.modified == modified
                && entry.len == len
            {
                return Ok(entry.application.clone_ref(py));
            }
        }
        let module_name = format!("wsgihost_script_{}", name.trim_end_matches(".py"));
        let application = loader(py)
            .and_then(|loader| {
                loader.call_method1(
                    "load_script",
                    (path.to_string_lossy().as_ref(), module_name),
                )
            })
            .map_err(|err| ScriptError::Broken {
                traceback: format_traceback(py, &err),
            })?
            .unbind();
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        loaded.insert(
            name.to_string(),
            Loaded {
                modified,
                len,
                application: application.clone_ref(py),
            },
        );
        Ok(application)
    }

    /// The script's path, if `name` is a plain `NAME.py` file directly inside the folder.
    /// A name holds no separator, so a regular file there is inside; only a symlink needs
    /// resolving (and must lead to a file directly in the folder).
    fn locate(&self, name: &str) -> Option<PathBuf> {
        if !is_script_name(name) {
            return None;
        }
        let path = self.dir.join(name);
        let kind = std::fs::symlink_metadata(&path).ok()?.file_type();
        if kind.is_file() {
            return Some(path);
        }
        if !kind.is_symlink() {
            return None;
        }
        let real = path.canonicalize().ok()?;
        let dir = self.dir.canonicalize().ok()?;
        (real.parent() == Some(dir.as_path()) && real.is_file()).then_some(path)
    }
}

/// `NAME.py` with a non-empty NAME that holds no path separators, NULs or leading dot.
pub fn is_script_name(name: &str) -> bool {
    name.len() > 3
        && name.ends_with(".py")
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
}

#[cfg(test)]
mod tests {
    use super::is_script_name;

    #[test]
    fn script_names() {
        assert!(is_script_name("ctime.py"));
        assert!(!is_script_name(".py"));
        assert!(!is_script_name("..py"));
        assert!(!is_script_name(".hidden.py"));
        assert!(!is_script_name("a\\b.py"));
        assert!(!is_script_name("a/b.py"));
        assert!(!is_script_name("a.pyc"));
    }
}
