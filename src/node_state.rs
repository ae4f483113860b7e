//! What clusterctl keeps on a node between runs, under `/var/lib/clusterctl`:
//! backups of replaced files and the handlers a node still owes. Written by
//! the engine's scripts, read back by the probe.

/// Where old versions of changed files go, one directory per run; outside
/// every include directory (a backup in /etc/dnsmasq.d would be loaded).
pub const BACKUP_ROOT: &str = "/var/lib/clusterctl/backups";

/// The steps whose handler a node still owes: written (before any file is
/// renamed) by the write round trip, emptied by the handler round trip as
/// each handler succeeds, read by the probe. An apply that is interrupted or
/// loses the connection between the two, or whose handler fails, is finished
/// by the next apply even though the files are already in sync.
pub const OWED_FILE: &str = "/var/lib/clusterctl/owed-handlers";

/// Commit-confirm state, one directory per run: the revert script and the
/// `armed` flag (removed by the controller's confirmation, or renamed by
/// the revert when it fires), and `reverted` once it has.
pub const CONFIRM_ROOT: &str = "/var/lib/clusterctl/confirm";

/// The apply lock: one apply at a time on a node. A directory holding
/// `owner` (run id and the time its lease ends, as older clusterctl reads
/// it), `node`, and `alive` (the run's processes here and a grace after
/// them: a dead run's lock is taken 30 s after its last one).
pub const LOCK_DIR: &str = "/var/lib/clusterctl/lock";

/// The accounts clusterctl created, one name a line (`engine/users.sh`
/// appends a name before `useradd`; the probe reads it). An account not
/// listed here is never touched: kept as a root-owned file in clusterctl's
/// state directory rather than a GECOS marker, which any user can change
/// with `chfn`.
pub const USERS_FILE: &str = "/var/lib/clusterctl/users";

/// A worker moved onto its reserved address, one directory per run: the
/// detached `renew_wait.sh` and its `renew.log` (what it asked and saw).
pub const RENEW_ROOT: &str = "/var/lib/clusterctl/renew";
