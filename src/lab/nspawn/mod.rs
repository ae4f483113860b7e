//! Lab hosts of the systemd kind: a container booting real systemd as PID 1
//! (`systemd-nspawn --boot`) on its own Debian root (an image from
//! `image.rs`, shared read-only through overlayfs, with a private upper
//! directory on disk that survives reboots).
//!
//! Each host has a supervisor, the hidden `clusterctl lab supervise-host`,
//! started by `lab up` as `unshare --net --mount` so that it holds the host's
//! network namespace (the veths are plugged into it, nspawn joins it by
//! `/proc/PID/ns/net`, so no `/run/netns` mount is left behind) and a private
//! mount namespace in which it mounts the overlay and a tmpfs over /run (where
//! nspawn keeps its own files). It moves itself into the cgroup
//! `clusterctl-lab-<prefix>/<host>` (one per host, or systemd units of
//! different containers collide), tells `lab up` it is `ready`, waits for
//! `go` (veths plugged), then runs nspawn and runs it again whenever it exits
//! with 133 (`systemctl reboot` inside). Any other exit ends the supervisor:
//! the host is down. Each boot gets a fresh network namespace (held by a
//! `sleep` child of the supervisor) into which the host's veths are moved:
//! as on a real reboot, addresses, routes, firewall rules and the
//! namespace's sysctls of the previous boot are gone; the NICs (names, MACs,
//! bridge ports) stay.
//!
//! Stopping a host kills its supervisor, then every process of its cgroup
//! (the container's PID 1 takes its whole PID namespace with it), then
//! removes the cgroups. Nothing of a host is in the root mount namespace.
//!
//! The pieces: `disk` (the upper directory), `supervisor` (the hidden
//! command and the nspawn loop), `container` (PID 1, commands inside,
//! waiting for boot, reboot), `cgroup` (joining and killing the lab's
//! cgroups), `inotify` (the machine's limit while systemd hosts run).

mod cgroup;
mod container;
mod disk;
mod inotify;
mod supervisor;

pub use cgroup::{kill_cgroups, lab_cgroup};
pub use container::{boot_id, enter, leader, request_reboot, wait_booted};
pub use disk::{make_disk, network_files};
pub use inotify::{raise_inotify, restore_inotify, INOTIFY_INSTANCES};
pub use supervisor::{spawn, supervise};
