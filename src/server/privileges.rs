//! `--user`, `--group` and `--initgroups`: a worker gives up the master's privileges right
//! after its fork (as gunicorn's workers do), before it imports the app. The master keeps
//! its own, to re-read root-only certificate keys on SIGHUP and to bind.
use anyhow::{Context, Result};
use nix::unistd::{Gid, Uid};

use crate::config::Config;

/// Switches this process to --user and --group; nothing when neither is given.
pub fn drop_privileges(config: &Config) -> Result<()> {
    let gid = config.group.or(config.user.as_ref().map(|user| user.gid));
    if let Some(gid) = gid {
        let gid = Gid::from_raw(gid);
        match (&config.user, config.initgroups) {
            (Some(user), true) => {
                let name = std::ffi::CString::new(user.name.as_str())?;
                nix::unistd::initgroups(&name, gid).context("--initgroups")?;
            }
            _ => nix::unistd::setgroups(&[gid]).context("--group: setting the groups")?,
        }
        nix::unistd::setgid(gid).with_context(|| format!("--group: switching to gid {gid}"))?;
    }
    if let Some(user) = &config.user {
        nix::unistd::setuid(Uid::from_raw(user.uid))
            .with_context(|| format!("--user {}: switching to uid {}", user.name, user.uid))?;
    }
    Ok(())
}

/// Unix socket files belong to --user and --group, so a proxy in that group can connect
/// (the master made them before the workers dropped their privileges).
pub fn hand_over(paths: &[std::path::PathBuf], config: &Config) -> Result<()> {
    let uid = config.user.as_ref().map(|user| Uid::from_raw(user.uid));
    let gid = config
        .group
        .or(config.user.as_ref().map(|u| u.gid))
        .map(Gid::from_raw);
    if uid.is_none() && gid.is_none() {
        return Ok(());
    }
    for path in paths {
        nix::unistd::chown(path, uid, gid)
            .with_context(|| format!("giving unix:{} to --user/--group", path.display()))?;
    }
    Ok(())
}
