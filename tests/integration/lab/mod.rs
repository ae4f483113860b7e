//! Lab tests: they bring real labs up and down on this machine, so they need
//! root. Marked ignored (a plain `cargo test` reports them as ignored with the
//! reason); CI runs `cargo test -- --include-ignored` as root. Run that way
//! without root they fail with a clear message, never pass silently.
//!
//! Each test holds a process-wide mutex (one lab at a time on 2 cores), uses
//! its own prefix and subnets, handed out by [`subnets`] (a crashed test
//! cannot poison the next; two tests never share a lab), and a
//! `Lab` guard brings its lab down even when the test fails. Every lab runs a
//! private copy of the binary, so a rebuild during the test cannot swap the
//! hosts' PID 1 under them. The copy is made by a `cp` child process, never
//! by this process: a file this process held open for writing could be
//! inherited by a child that another test thread forks at that moment, and
//! executing the copy would then fail with ETXTBSY until that child execs.

use std::collections::BTreeSet;
use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use clusterctl::lab::state::{LabState, Proc};

mod access;
mod apply;
mod diff;
mod discover;
mod faults;
mod lifecycle;
mod subnets;
mod systemd;

pub(crate) use apply::Watched;
pub(crate) use subnets::TestLab;

static SERIAL: Mutex<()> = Mutex::new(());

pub(crate) fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Held while a lab test runs: the in-process mutex, and a file lock so two
/// test processes on one machine (two checkouts) take turns too.
pub(crate) struct Serial {
    _file: fs::File,
    _guard: MutexGuard<'static, ()>,
}

/// Take the lab lock; fail loudly when not root.
pub(crate) fn serial() -> Serial {
    assert!(
        is_root(),
        "lab tests need root (they create network namespaces, veths and mounts): \
         run `sudo cargo test -- --include-ignored`, as CI does"
    );
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/tmp/clusterctl-lab-tests.lock")
        .expect("test lock file");
    // SAFETY: flock(2) on a descriptor we own; released when it is closed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "cannot lock /tmp/clusterctl-lab-tests.lock");
    Serial {
        _file: file,
        _guard: guard,
    }
}

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub(crate) fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// One lab for one test; brought down on drop.
pub(crate) struct Lab {
    pub(crate) prefix: String,
    pub(crate) wan: String,
    pub(crate) lan: String,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) bin: PathBuf,
}

impl Lab {
    /// The lab of test `id`: its prefix and subnets from [`subnets`]
    /// (claimed for the running test: another test naming `id` fails).
    pub(crate) fn new(id: TestLab) -> Lab {
        let slot = subnets::claim(id);
        let dir = tempfile::tempdir().expect("temp dir");
        let bin = dir.path().join("clusterctl");
        copy_binary(&bin);
        let lab = Lab {
            prefix: slot.prefix.to_string(),
            wan: slot.wan(),
            lan: slot.lan(),
            dir,
            bin,
        };
        // A crashed earlier run of this test may have left its lab.
        let out = lab.run(&["lab", "down"]);
        assert!(out.status.success(), "{}", describe("pre-clean down", &out));
        lab
    }

    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env("CLUSTERCTL_LAB_PREFIX", &self.prefix)
            .current_dir(self.dir.path());
        cmd
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run clusterctl")
    }

    pub(crate) fn up(&self, workers: u32) -> Output {
        self.up_with(workers, &[])
    }

    /// `lab up` with more flags (`--kind systemd`, `--network ...`).
    pub(crate) fn up_with(&self, workers: u32, extra: &[&str]) -> Output {
        let w = workers.to_string();
        let mut args = vec![
            "lab",
            "up",
            "--workers",
            &w,
            "--wan",
            &self.wan,
            "--lan",
            &self.lan,
        ];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        assert!(out.status.success(), "{}", describe("lab up", &out));
        out
    }

    pub(crate) fn down(&self) {
        let out = self.run(&["lab", "down"]);
        assert!(out.status.success(), "{}", describe("lab down", &out));
    }

    /// `lab exec HOST -- ARGS...`
    pub(crate) fn exec(&self, host: &str, args: &[&str]) -> Output {
        let mut all = vec!["lab", "exec", host, "--"];
        all.extend_from_slice(args);
        self.run(&all)
    }

    /// Run a shell script on a host; it must succeed; returns its stdout.
    pub(crate) fn sh(&self, host: &str, script: &str) -> String {
        let out = self.exec(host, &["sh", "-c", script]);
        assert!(
            out.status.success(),
            "{}",
            describe(&format!("on {host}: {script}"), &out)
        );
        text(&out.stdout)
    }

    fn state(&self) -> LabState {
        let path = format!("/run/clusterctl-lab/{}/state.yaml", self.prefix);
        let t = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_saphyr::from_str(&t).expect("state parses")
    }

    fn inits(&self) -> Vec<(String, Proc)> {
        self.state()
            .hosts
            .iter()
            .filter(|h| h.stack.is_none())
            .map(|h| (h.name.clone(), h.init.expect("init recorded")))
            .collect()
    }

    /// Every recorded process: the hosts' inits and the bridge holder.
    fn all_procs(&self) -> Vec<(String, Proc)> {
        let mut all = self.inits();
        all.push((
            "bridges".into(),
            self.state().bridges.expect("bridge holder recorded"),
        ));
        all
    }

    fn lab_dir(&self) -> PathBuf {
        self.dir.path().join("lab")
    }

    /// Take worker `name` out of the lab's inventory `inv` (the lab keeps
    /// it running) and return its MAC, for a later `add-node`.
    pub(crate) fn drop_worker(&self, inv: &str, name: &str) -> String {
        let path = self.dir.path().join(inv);
        let yaml = std::fs::read_to_string(&path).unwrap();
        let at = yaml
            .find(&format!("  - name: {name}\n"))
            .expect("the worker's entry");
        // The entry ends at the next entry or the blank line after the list.
        let next = yaml[at + 1..].find("\n  - ").map(|e| at + 1 + e + 1);
        let blank = yaml[at..].find("\n\n").map(|e| at + e + 1);
        let end = [next, blank]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(yaml.len());
        let mac_line = yaml[at..end]
            .lines()
            .find(|l| l.trim_start().starts_with("mac:"))
            .expect("mac line")
            .to_string();
        let mac = mac_line.split('"').nth(1).expect("quoted mac").to_string();
        std::fs::write(&path, format!("{}{}", &yaml[..at], &yaml[end..])).unwrap();
        mac
    }

    /// Address `host` in the first /24 of the LAN (`10.78.N.host`).
    pub(crate) fn lan_ip(&self, host: u8) -> String {
        let net = self.lan.split('/').next().unwrap_or_default();
        let (first3, _) = net.rsplit_once('.').unwrap_or((net, ""));
        format!("{first3}.{host}")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.run(&["lab", "down"]);
    }
}

/// Copy the binary to `to` without ever holding a writable descriptor of
/// the copy in this process (see the module doc: ETXTBSY).
fn copy_binary(to: &Path) {
    let st = Command::new("cp")
        .arg(env!("CARGO_BIN_EXE_clusterctl"))
        .arg(to)
        .status()
        .expect("run cp");
    assert!(st.success(), "cp of the binary failed");
}

/// What the lab could leave behind on the machine.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    netns: String,
    links: BTreeSet<String>,
    mounts: String,
    /// Top-level cgroups of every hierarchy.
    cgroups: BTreeSet<String>,
    /// Sysctls the lab changes.
    sysctls: String,
    /// Files the lab or nspawn could leave in /run and /var/lib.
    files: BTreeSet<String>,
}

fn dir_names(dir: &str) -> BTreeSet<String> {
    fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn snapshot() -> Snapshot {
    let netns = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns");
    let links = Command::new("ip")
        .args(["-o", "link"])
        .output()
        .expect("ip link");
    Snapshot {
        netns: text(&netns.stdout),
        links: text(&links.stdout)
            .lines()
            .filter_map(|l| l.split(':').nth(1).map(|n| n.trim().to_string()))
            .collect(),
        mounts: fs::read_to_string("/proc/self/mounts").expect("mounts"),
        cgroups: dir_names("/sys/fs/cgroup")
            .iter()
            .flat_map(|h| dir_names(h))
            .filter(|p| Path::new(p).is_dir())
            .collect(),
        sysctls: fs::read_to_string("/proc/sys/fs/inotify/max_user_instances")
            .expect("inotify sysctl"),
        files: [
            "/run/systemd",
            "/run/clusterctl-lab",
            "/var/lib/clusterctl-lab",
        ]
        .iter()
        .flat_map(|d| dir_names(d))
        .chain(["/var/lib/clusterctl-lab".to_string()])
        .filter(|p| Path::new(p).exists())
        .collect(),
    }
}

/// The network namespace of every live process (zombies have none).
fn live_netns() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for e in dir.flatten() {
            if let Ok(ns) = fs::read_link(e.path().join("ns/net")) {
                out.insert(ns.to_string_lossy().into_owned());
            }
        }
    }
    out
}

fn assert_gone(lab: &Lab, inits: &[(String, Proc)], netns: &BTreeSet<String>, before: &Snapshot) {
    for (name, p) in inits {
        assert!(
            !p.alive(),
            "host {name} (pid {}) still alive after down",
            p.pid
        );
    }
    let live = live_netns();
    for ns in netns {
        assert!(!live.contains(ns), "a process is still in lab netns {ns}");
    }
    assert_eq!(&snapshot(), before, "the machine differs after down");
    let state = format!("/run/clusterctl-lab/{}", lab.prefix);
    assert!(!Path::new(&state).exists(), "{state} left behind");
}

fn host_netns(inits: &[(String, Proc)]) -> BTreeSet<String> {
    inits
        .iter()
        .map(|(_, p)| {
            fs::read_link(format!("/proc/{}/ns/net", p.pid))
                .expect("host netns")
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// Wait until `host` holds `ip` on its eth0 (its DHCP lease from the head).
pub(crate) fn wait_for_lease(lab: &Lab, host: &str, ip: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let addr = lab.sh(host, "ip -4 -o addr show dev eth0");
        if addr.contains(&format!(" {ip}/")) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{host} got no lease {ip}: {addr}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
