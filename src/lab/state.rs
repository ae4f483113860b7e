//! What a running lab recorded about itself, under `/run/clusterctl-lab/<prefix>/`:
//! the flags it was built with, every host's processes (PID plus start time,
//! so a recycled PID is never killed), keys and per-host files. `down` finds
//! everything it must remove through this file and the prefixed names alone.
//! Also: the lock that serializes `up`/`down` and process helpers (liveness,
//! kill by recorded PID).

use std::fs::{self, File};
use std::io::ErrorKind;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Where every lab keeps its state.
pub const BASE_DIR: &str = "/run/clusterctl-lab";

/// One host's processes as recorded when it was started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRecord {
    pub name: String,
    /// The `unshare` process in the root PID namespace (parent of `init`).
    pub unshare: Proc,
    /// The host's PID 1, as seen from the root PID namespace (light hosts;
    /// a systemd host's PID 1 changes at each reboot and is looked up).
    #[serde(default)]
    pub init: Option<Proc>,
    /// The network stack of a systemd-kind host (its `unshare` is then the
    /// host's supervisor); None for a light host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
}

impl HostRecord {
    /// Is the host running (a light host's init, a systemd host's supervisor)?
    pub fn alive(&self) -> bool {
        match self.stack {
            None => self.init.is_some_and(|i| i.alive()),
            Some(_) => self.unshare.alive(),
        }
    }
}

/// A process identified by PID and start time (clock ticks since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proc {
    pub pid: i32,
    pub start: u64,
}

impl Proc {
    /// Identify a running process; None if it is gone.
    pub fn of(pid: i32) -> Option<Proc> {
        proc_stat(pid).map(|(_, start)| Proc { pid, start })
    }

    /// Still the same process and not yet dead (a zombie is dead).
    pub fn alive(&self) -> bool {
        matches!(proc_stat(self.pid), Some((state, start)) if start == self.start && state != 'Z' && state != 'X')
    }

    /// SIGKILL it if it is still the recorded process.
    pub fn kill(&self) {
        if self.alive() {
            // SAFETY: kill(2) with a PID we verified by start time; no memory is involved.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
            }
        }
    }
}

/// The state file of one lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabState {
    pub prefix: String,
    pub wan: String,
    pub lan: String,
    pub workers: u32,
    /// `light` or `systemd`: the kind of the head and workers.
    #[serde(default = "light")]
    pub kind: String,
    /// Absolute path of the inventory `up` wrote.
    pub inventory: PathBuf,
    /// The process holding the bridge namespace.
    #[serde(default)]
    pub bridges: Option<Proc>,
    #[serde(default)]
    pub hosts: Vec<HostRecord>,
}

impl LabState {
    pub fn host(&self, name: &str) -> Option<&HostRecord> {
        self.hosts.iter().find(|h| h.name == name)
    }
}

fn light() -> String {
    "light".into()
}

/// Where systemd-kind hosts keep their disks (overlay upper directories):
/// on disk, not in /run, since hosts install packages. Removed by `down`.
pub const DISK_DIR: &str = "/var/lib/clusterctl-lab";

/// Paths of one lab's state.
#[derive(Debug, Clone)]
pub struct Paths {
    pub dir: PathBuf,
}

impl Paths {
    pub fn new(prefix: &str) -> Paths {
        Paths {
            dir: Path::new(BASE_DIR).join(prefix),
        }
    }
    pub fn state_file(&self) -> PathBuf {
        self.dir.join("state.yaml")
    }
    pub fn key(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }
    pub fn host_dir(&self, host: &str) -> PathBuf {
        self.dir.join("hosts").join(host)
    }
    /// The tree copied over the host's root at boot.
    pub fn host_files(&self, host: &str) -> PathBuf {
        self.host_dir(host).join("files")
    }
    /// Mount point of the host's private tmpfs (mounted only inside the host).
    pub fn host_mnt(&self, host: &str) -> PathBuf {
        self.host_dir(host).join("mnt")
    }
    pub fn host_key(&self, host: &str) -> PathBuf {
        self.host_dir(host).join("ssh_host_ed25519_key")
    }
    pub fn console_log(&self, host: &str) -> PathBuf {
        self.host_dir(host).join("console.log")
    }
    /// The lab's disk directory (systemd-kind hosts).
    pub fn disk(&self) -> PathBuf {
        let prefix = self.dir.file_name().unwrap_or_default();
        Path::new(DISK_DIR).join(prefix)
    }
    /// A systemd-kind host's disk: `upper`, `work` and the mount point `root`.
    pub fn host_disk(&self, host: &str) -> PathBuf {
        self.disk().join(host)
    }

    pub fn load(&self) -> Result<Option<LabState>> {
        let path = self.state_file();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(Error::Read { path, source }),
        };
        serde_saphyr::from_str(&text)
            .map(Some)
            .map_err(|e| Error::Lab {
                message: format!("{} is damaged: {e}", path.display()),
                help: Some(
                    "run `clusterctl lab down` to clean up what it can, then `lab up`".into(),
                ),
            })
    }

    pub fn save(&self, state: &LabState) -> Result<()> {
        let text = serde_saphyr::to_string(state)
            .map_err(|e| Error::lab(format!("cannot encode the lab state: {e}")))?;
        let path = self.state_file();
        let tmp = path.with_extension("yaml.tmp");
        fs::create_dir_all(&self.dir).map_err(|source| Error::Write {
            path: self.dir.clone(),
            source,
        })?;
        fs::write(
            &tmp,
            format!("# clusterctl lab state (do not edit)\n{text}"),
        )
        .map_err(|source| Error::Write {
            path: tmp.clone(),
            source,
        })?;
        fs::rename(&tmp, &path).map_err(|source| Error::Write { path, source })
    }
}

/// An exclusive lock over every lab operation on this machine, held until dropped.
pub struct Lock {
    _file: File,
}

impl Lock {
    pub fn acquire() -> Result<Lock> {
        fs::create_dir_all(BASE_DIR).map_err(|source| Error::Write {
            path: BASE_DIR.into(),
            source,
        })?;
        let file = File::open(BASE_DIR).map_err(|source| Error::Read {
            path: BASE_DIR.into(),
            source,
        })?;
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            // SAFETY: flock(2) on a descriptor we own.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                return Ok(Lock { _file: file });
            }
            if Instant::now() > deadline {
                return Err(Error::Lab {
                    message: format!("another `clusterctl lab` holds the lock on {BASE_DIR}"),
                    help: Some("wait for it to finish".into()),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// State letter and start time of a process, from /proc/PID/stat.
fn proc_stat(pid: i32) -> Option<(char, u64)> {
    if pid <= 0 {
        return None;
    }
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: parse after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is the state (field 3); start time is field 22, i.e. fields[19].
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// Wait until none of the processes is alive, up to `timeout`. Returns the survivors.
pub fn wait_gone(procs: &[Proc], timeout: Duration) -> Vec<Proc> {
    let deadline = Instant::now() + timeout;
    loop {
        let alive: Vec<Proc> = procs.iter().copied().filter(Proc::alive).collect();
        if alive.is_empty() || Instant::now() > deadline {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_identified() {
        let me = Proc::of(std::process::id() as i32).unwrap();
        assert!(me.alive());
        let other = Proc {
            pid: me.pid,
            start: me.start + 1,
        };
        assert!(
            !other.alive(),
            "a different start time is a different process"
        );
        assert!(Proc::of(-1).is_none());
    }

    #[test]
    fn state_round_trips() {
        let st = LabState {
            prefix: "cl".into(),
            wan: "198.51.100.0/24".into(),
            lan: "10.77.0.0/24".into(),
            workers: 2,
            kind: "systemd".into(),
            inventory: "/tmp/lab/cluster.yaml".into(),
            bridges: Some(Proc { pid: 9, start: 19 }),
            hosts: vec![HostRecord {
                name: "head".into(),
                unshare: Proc { pid: 10, start: 20 },
                init: Some(Proc { pid: 11, start: 21 }),
                stack: Some("nm".into()),
            }],
        };
        let text = serde_saphyr::to_string(&st).unwrap();
        let back: LabState = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(back, st);
    }
}
