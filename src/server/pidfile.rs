//! `--pid FILE`: the master's process id, for init scripts and `kill $(cat FILE)`. Written
//! at start (refused while the file names a live process), removed when the master exits.
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    pub fn create(path: &Path) -> Result<PidFile> {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|text| text.trim().parse::<i32>().ok())
            && pid != std::process::id() as i32
            && alive(pid)
        {
            bail!(
                "--pid {}: process {pid} is running (another wsgihost?); stop it or remove the file",
                path.display()
            );
        }
        let temporary = path.with_extension("pid.tmp");
        std::fs::write(&temporary, format!("{}\n", std::process::id()))
            .and_then(|()| std::fs::rename(&temporary, path))
            .map_err(|err| anyhow::anyhow!("--pid {}: {err}", path.display()))?;
        Ok(PidFile {
            path: path.to_path_buf(),
        })
    }
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}

impl PidFile {
    /// Moves the file to `path` (a master started by an upgrade, once the old one is gone).
    pub fn rename(&mut self, path: &Path) {
        if self.path != path {
            match std::fs::rename(&self.path, path) {
                Ok(()) => self.path = path.to_path_buf(),
                Err(err) => crate::log_warn!("--pid {}: {err}", path.display()),
            }
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.path)
            .is_ok_and(|text| text.trim() == std::process::id().to_string());
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_refused_while_alive_and_removed() {
        let dir = std::env::temp_dir().join(format!("wsgihost-pid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.pid");
        std::fs::write(&path, "1\n").unwrap();
        assert!(
            PidFile::create(&path)
                .unwrap_err()
                .to_string()
                .contains("process 1 is running")
        );
        std::fs::write(&path, "999999999\n").unwrap();
        let file = PidFile::create(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        drop(file);
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
