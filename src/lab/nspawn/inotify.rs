//! The machine's inotify instance limit: raised while a lab of systemd hosts
//! is up, restored (to the value saved once) when none is left.

use std::fs;
use std::path::Path;

use crate::error::{Error, Result};
use crate::lab::host::write_file;
use crate::lab::state::BASE_DIR;

/// The inotify instances a lab of systemd hosts needs (each host's systemd,
/// journald, logind, udev-less units take several; the default 128 runs out
/// around 19 hosts).
pub const INOTIFY_INSTANCES: u64 = 8192;
const INOTIFY_PATH: &str = "/proc/sys/fs/inotify/max_user_instances";

/// Raise the inotify instance limit for a systemd lab; the old value is
/// kept (machine-wide, once) for [`restore_inotify`].
pub fn raise_inotify() -> Result<()> {
    let saved = Path::new(BASE_DIR).join("inotify.max_user_instances");
    let now: u64 = fs::read_to_string(INOTIFY_PATH)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    if !saved.exists() {
        write_file(&saved, &format!("{now}\n"), 0o644)?;
    }
    if now < INOTIFY_INSTANCES {
        fs::write(INOTIFY_PATH, format!("{INOTIFY_INSTANCES}\n")).map_err(|source| {
            Error::Write {
                path: INOTIFY_PATH.into(),
                source,
            }
        })?;
    }
    Ok(())
}

/// Put the inotify limit back as it was, once no lab of systemd hosts is up.
pub fn restore_inotify() -> Result<()> {
    let base = Path::new(BASE_DIR);
    let saved = base.join("inotify.max_user_instances");
    let Ok(text) = fs::read_to_string(&saved) else {
        return Ok(());
    };
    let others = fs::read_dir(base)
        .map(|entries| {
            entries.flatten().any(|e| {
                fs::read_to_string(e.path().join("state.yaml"))
                    .is_ok_and(|t| t.contains("\nkind: systemd"))
            })
        })
        .unwrap_or(false);
    if others {
        return Ok(());
    }
    fs::write(INOTIFY_PATH, text.trim()).map_err(|source| Error::Write {
        path: INOTIFY_PATH.into(),
        source,
    })?;
    let _ = fs::remove_file(saved);
    Ok(())
}
