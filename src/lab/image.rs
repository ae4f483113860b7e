//! What systemd-kind lab hosts are made of, built on this machine and cached
//! under `/var/cache/clusterctl-lab/`: one Debian bookworm root per network
//! stack (`mmdebstrap` from the Debian archive this machine's apt uses), and
//! the apt mirror the wan host serves (`apt-get download` of the packages
//! clusterctl may install and their dependencies, indexed by
//! `dpkg-scanpackages`). Each is named by a hash of its recipe (for the
//! mirror: of the exact package files), so a changed recipe builds a new one
//! and the stale one is removed; a half-built one is never used (built in a
//! temporary directory, renamed when complete).

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

pub use super::suite::{Archive, Suite};
use crate::error::{Error, Result};
use crate::transport::shell_quote;

/// The cache of images and the mirror.
pub const CACHE_DIR: &str = "/var/cache/clusterctl-lab";

/// The name the hosts' apt sources use for the wan host's mirror (the wan
/// host's DNS answers every name under `internet.test` with its address).
pub const MIRROR_HOST: &str = "deb.internet.test";

/// Where the mirror's files are in its URL: `http://MIRROR_HOST/debian/`.
pub const MIRROR_PATH: &str = "debian";

/// A systemd-kind host's network stack, as a freshly installed OS has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stack {
    /// Debian server: ifupdown with /etc/network/interfaces, isc-dhcp-client.
    Ifupdown,
    /// Ubuntu-like: systemd-networkd and systemd-resolved.
    Networkd,
    /// Raspberry Pi OS Bookworm-like: NetworkManager.
    Nm,
}

impl fmt::Display for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Stack {
    pub const ALL: [Stack; 3] = [Stack::Ifupdown, Stack::Networkd, Stack::Nm];

    /// The stack's name as the inventory spells it (`network:`), which is
    /// what the lab prints and records in its state.
    pub fn name(self) -> &'static str {
        match self {
            Stack::Ifupdown => "ifupdown",
            Stack::Networkd => "networkd",
            Stack::Nm => "networkmanager",
        }
    }

    /// Another spelling `--network` accepts: `nm`, the lab's name before.
    pub fn alias(self) -> Option<&'static str> {
        (self == Stack::Nm).then_some("nm")
    }

    /// The name of the stack's cached image (`images/NAME-KEY` under
    /// [`CACHE_DIR`]): `nm` stays `nm`, so no image is rebuilt for a rename.
    fn image_name(self) -> &'static str {
        self.alias().unwrap_or(self.name())
    }

    pub fn parse(flag: &str, text: &str) -> Result<Stack> {
        Stack::ALL
            .into_iter()
            .find(|s| s.name() == text || s.alias() == Some(text))
            .ok_or_else(|| Error::Lab {
                message: format!("{flag}: unknown network stack {text:?}"),
                help: Some(
                    "use ifupdown, networkd or networkmanager (or nm) (a comma list for --network)"
                        .into(),
                ),
            })
    }

    /// The packages this stack adds to the base image.
    fn packages(self) -> &'static [&'static str] {
        match self {
            Stack::Ifupdown => &["ifupdown", "isc-dhcp-client"],
            Stack::Networkd => &["systemd-resolved"],
            Stack::Nm => &["network-manager"],
        }
    }

    /// Idle memory of one host of this stack with its supervisor and nspawn,
    /// rounded up: the sum of /proc/PID/smaps_rollup PSS over the host's
    /// cgroup measured 13.6, 15.4 and 17.4 MiB in a lab of 100 workers, and
    /// up to 25, 36 and 46 MiB in a lab of 5 (fewer hosts share the pages).
    pub fn mib_per_host(self) -> u64 {
        match self {
            Stack::Ifupdown => 20,
            Stack::Networkd => 22,
            Stack::Nm => 30,
        }
    }
}

/// `--network a,b,c`: the stacks to cycle over (at least one).
pub fn parse_stacks(flag: &str, text: &str) -> Result<Vec<Stack>> {
    let stacks = text
        .split(',')
        .map(|s| Stack::parse(flag, s.trim()))
        .collect::<Result<Vec<_>>>()?;
    if stacks.is_empty() {
        return Err(Error::lab(format!("{flag} names no stack")));
    }
    Ok(stacks)
}

/// What every image has: a freshly installed minimal Debian with systemd and
/// sshd. Not dnsmasq, an NFS server, iptables or anything clusterctl installs.
const BASE_PACKAGES: &[&str] = &[
    // `lab up --login sudo` (#27), as cloud and Raspberry Pi images have it.
    "sudo",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "iproute2",
    "iputils-ping",
    "procps",
];

/// What the wan host's mirror carries (with every dependency): every
/// package apply may install on a Debian node (the Debian family's name for
/// every step's package, from `src/family/debian.rs`), then [`LAB_EXTRAS`].
/// The tools' own packages (ifupdown, systemd, ...) come with the images.
pub fn mirror_packages() -> Vec<&'static str> {
    let mut v = crate::catalog::packages_of(&crate::family::DEBIAN);
    for p in LAB_EXTRAS {
        if !v.contains(p) {
            v.push(p);
        }
    }
    v
}

/// What the mirror carries beyond the catalog's packages.
const LAB_EXTRAS: &[&str] = &[
    // iptables-persistent's dependency (in the closure anyway; kept named
    // so the mirror's recipe and cache key stay as they were).
    "netfilter-persistent",
    // #13: the lab's userspace NFS client, a test tool (the server,
    // nfs-ganesha, is the catalog's).
    "libnfs-utils",
    // #23: `man clusterctl` where the Debian package is installed (a
    // minbase root has no man).
    "man-db",
];

/// The mmdebstrap customize hook (`$1` is the new root): no shared identity,
/// apt pointed at the lab's mirror, the stack's own boot configuration.
fn customize_script(stack: Stack) -> String {
    format!(
        "mirror={}\nstack={}\n{}",
        shell_quote(&format!("http://{MIRROR_HOST}/{MIRROR_PATH}")),
        stack.name(),
        include_str!("customize.sh")
    )
}

/// The image's recipe: everything that decides its content.
pub struct Recipe {
    pub suite: Suite,
    pub stack: Stack,
    pub packages: Vec<&'static str>,
    pub customize: String,
}

impl Recipe {
    pub fn of(stack: Stack, suite: Suite) -> Recipe {
        let mut packages = BASE_PACKAGES.to_vec();
        packages.extend_from_slice(stack.packages());
        Recipe {
            suite,
            stack,
            packages,
            customize: customize_script(stack),
        }
    }

    /// Hash of the recipe: the image's cache key.
    pub fn key(&self) -> String {
        let text = format!(
            "v1 {} minbase\n{}\n{}",
            self.suite,
            self.packages.join(","),
            self.customize
        );
        format!("{:016x}", fnv1a64(text.as_bytes()))
    }
}

pub use crate::fnv::fnv1a64;

fn mkdir(path: &Path) -> Result<()> {
    fs::create_dir_all(path).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Run a command; on failure the error carries the tail of its output.
fn run_logged(cmd: &mut Command, what: &str, log: &Path) -> Result<()> {
    let file = fs::File::create(log).map_err(|source| Error::Write {
        path: log.to_path_buf(),
        source,
    })?;
    let err = file.try_clone().map_err(|source| Error::Write {
        path: log.to_path_buf(),
        source,
    })?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .status()
        .map_err(|e| Error::Lab {
            message: format!("cannot run {what}: {e}"),
            help: Some("install the lab's packages: sudo scripts/install-deps.sh".into()),
        })?;
    if status.success() {
        return Ok(());
    }
    let text = fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(8).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(Error::Lab {
        message: format!("{what} failed ({status}):\n{}", tail.join("\n")),
        help: Some(format!("its whole output is in {}", log.display())),
    })
}

/// Images and mirrors a running lab uses (the paths its hosts recorded).
fn in_use() -> Vec<PathBuf> {
    let mut used = Vec::new();
    let Ok(labs) = fs::read_dir(super::state::BASE_DIR) else {
        return used;
    };
    for lab in labs.flatten() {
        let Ok(hosts) = fs::read_dir(lab.path().join("hosts")) else {
            continue;
        };
        for h in hosts.flatten() {
            for f in ["image", "files/etc/clusterctl-lab/serve"] {
                if let Ok(p) = fs::read_to_string(h.path().join(f)) {
                    used.push(PathBuf::from(p.trim()));
                }
            }
        }
    }
    used
}

/// Remove every entry of `dir` named `<prefix>*` except `keep` and what a
/// running lab uses.
fn remove_stale(dir: &Path, prefix: &str, keep: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let used = in_use();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(prefix) && name != keep && !used.contains(&e.path()) {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// The cached root of a stack's image, built first if missing or stale.
/// Call with the cache lock held (see [`CacheLock`]).
pub fn ensure_image(stack: Stack, suite: Suite) -> Result<PathBuf> {
    let recipe = Recipe::of(stack, suite);
    let images = Path::new(CACHE_DIR).join("images");
    let prefix = format!("{}{}-", suite.cache_prefix(), stack.image_name());
    let name = format!("{prefix}{}", recipe.key());
    let root = images.join(&name);
    if root.join("etc/os-release").exists() {
        return Ok(root);
    }
    mkdir(&images)?;
    let sources = Archive::of_this_machine()?.sources(suite);
    let tmp = images.join(format!(".tmp-{name}"));
    let _ = fs::remove_dir_all(&tmp);
    let log = images.join(format!("{name}.log"));
    eprintln!(
        "lab: building the {suite} {} root image with mmdebstrap (once; cached in {})",
        stack.name(),
        images.display()
    );
    let t0 = Instant::now();
    let mut cmd = Command::new("mmdebstrap");
    cmd.args([
        "--variant=minbase",
        "--mode=root",
        "--format=directory",
        "--quiet",
    ])
    .arg(format!("--include={}", recipe.packages.join(",")))
    .arg(format!("--customize-hook={}", recipe.customize))
    .arg(suite.name())
    .arg(&tmp)
    .args(&sources)
    .env("LANG", "C.UTF-8");
    let built = run_logged(&mut cmd, "mmdebstrap", &log);
    if let Err(e) = built {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, &root).map_err(|source| Error::Write {
        path: root.clone(),
        source,
    })?;
    let _ = fs::remove_file(&log);
    remove_stale(&images, &prefix, &name);
    eprintln!(
        "lab: {} image built in {:.0}s",
        stack.name(),
        t0.elapsed().as_secs_f64()
    );
    Ok(root)
}

/// The mirror's directory (served as `/debian/`), built first if missing or
/// stale. Call with the cache lock held.
pub fn ensure_mirror(suite: Suite) -> Result<PathBuf> {
    let apt = apt_for(suite)?;
    let apt: Vec<&str> = apt.iter().map(String::as_str).collect();
    let wanted = mirror_packages();
    let names = closure(&apt, &wanted)?;
    // The exact files apt would fetch now: a security update makes a new mirror.
    let mut args = apt.clone();
    args.extend(["download", "--print-uris"]);
    args.extend(names.iter().map(String::as_str));
    let uris = super::net::run("apt-get", &args)?;
    let mut files: Vec<&str> = uris
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    files.sort_unstable();
    if files.len() < wanted.len() {
        return Err(Error::Lab {
            message: "apt knows none or few of the mirror's packages".into(),
            help: Some("run `apt-get update` once on this machine".into()),
        });
    }
    let key = format!("{:016x}", fnv1a64(files.join("\n").as_bytes()));
    let base = Path::new(CACHE_DIR);
    let prefix = format!("{}mirror-", suite.cache_prefix());
    let name = format!("{prefix}{key}");
    let dir = base.join(&name);
    if dir.join(MIRROR_PATH).join("Packages.gz").exists() {
        return Ok(dir);
    }
    mkdir(base)?;
    let tmp = base.join(format!(".tmp-{name}"));
    let _ = fs::remove_dir_all(&tmp);
    let debs = tmp.join(MIRROR_PATH);
    mkdir(&debs)?;
    eprintln!(
        "lab: building the wan host's {suite} apt mirror ({} packages; once, cached in {})",
        files.len(),
        dir.display()
    );
    let t0 = Instant::now();
    let log = base.join(format!("{name}.log"));
    let mut cmd = Command::new("apt-get");
    cmd.args(&apt)
        .args(["-q", "-o", "APT::Sandbox::User=root", "download"])
        .args(&names)
        .current_dir(&debs);
    let mut done = run_logged(&mut cmd, "apt-get download", &log).map_err(|e| match e {
        Error::Lab { message, help } => Error::Lab {
            message,
            help: Some(format!(
                "if the archive no longer has these versions, run `apt-get update` and try again; {}",
                help.unwrap_or_default()
            )),
        },
        other => other,
    });
    if done.is_ok() {
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "dpkg-scanpackages --multiversion . > Packages && gzip -9kn Packages",
        ])
        .current_dir(&debs);
        done = run_logged(&mut cmd, "dpkg-scanpackages", &log);
    }
    if let Err(e) = done {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, &dir).map_err(|source| Error::Write {
        path: dir.clone(),
        source,
    })?;
    let _ = fs::remove_file(&log);
    remove_stale(base, &prefix, &name);
    eprintln!("lab: mirror built in {:.0}s", t0.elapsed().as_secs_f64());
    Ok(dir)
}

/// apt's options for `suite`: none when it is this machine's own (its apt
/// as it is); else an apt state of the lab's own under the cache
/// (`apt-SUITE/`: the suite's sources from this machine's archive, an empty
/// package status), brought up to date here.
fn apt_for(suite: Suite) -> Result<Vec<String>> {
    let archive = Archive::of_this_machine()?;
    if archive.machine_suite == suite.name() {
        return Ok(Vec::new());
    }
    let dir = Path::new(CACHE_DIR).join(format!("apt-{suite}"));
    let write = |rel: &str, text: String| -> Result<()> {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            mkdir(parent)?;
        }
        fs::write(&path, text).map_err(|source| Error::Write { path, source })
    };
    write(
        "etc/apt/sources.list",
        archive.sources(suite).join("\n") + "\n",
    )?;
    write("var/lib/dpkg/status", String::new())?;
    for d in [
        "etc/apt/apt.conf.d",
        "etc/apt/preferences.d",
        "etc/apt/sources.list.d",
        "etc/apt/trusted.gpg.d",
        "var/lib/apt/lists/partial",
        "var/cache/apt/archives/partial",
    ] {
        mkdir(&dir.join(d))?;
    }
    let d = dir.to_string_lossy();
    let opts: Vec<String> = [
        format!("Dir={d}"),
        format!("Dir::State::status={d}/var/lib/dpkg/status"),
        "Debug::NoLocking=1".to_string(),
        format!(
            "APT::Architecture={}",
            super::net::run("dpkg", &["--print-architecture"])?.trim()
        ),
    ]
    .into_iter()
    .flat_map(|o| ["-o".to_string(), o])
    .collect();
    let mut update: Vec<&str> = opts.iter().map(String::as_str).collect();
    update.extend(["-q", "-o", "APT::Sandbox::User=root", "update"]);
    super::net::run("apt-get", &update).map_err(|e| Error::Lab {
        message: format!("cannot read Debian {suite}'s package lists: {e}"),
        help: Some("the lab reads the archive this machine's apt uses".into()),
    })?;
    Ok(opts)
}

/// Every real package `packages` need, recursively (no recommends), by name.
fn closure(apt: &[&str], packages: &[&str]) -> Result<Vec<String>> {
    let mut args = apt.to_vec();
    args.extend([
        "depends",
        "--recurse",
        "--no-recommends",
        "--no-suggests",
        "--no-conflicts",
        "--no-breaks",
        "--no-replaces",
        "--no-enhances",
    ]);
    args.extend_from_slice(packages);
    let text = super::net::run("apt-cache", &args).map_err(|e| Error::Lab {
        message: format!("cannot resolve the mirror's packages: {e}"),
        help: Some("run `apt-get update` once on this machine".into()),
    })?;
    Ok(parse_closure(&text))
}

/// The package names of `apt-cache depends --recurse` output: unindented
/// lines, less virtual packages (`<name>`).
pub fn parse_closure(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with([' ', '<', '|']))
        .map(|l| l.trim().to_string())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The cache's lock: one build at a time on this machine (two labs, two tests).
pub struct CacheLock {
    _file: fs::File,
}

impl CacheLock {
    pub fn acquire() -> Result<CacheLock> {
        use std::os::fd::AsRawFd;
        mkdir(Path::new(CACHE_DIR))?;
        let path = Path::new(CACHE_DIR).join(".lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| Error::Write { path, source })?;
        // SAFETY: flock(2) on a descriptor we own; released when it is closed.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc != 0 {
            return Err(Error::lab(format!(
                "cannot lock {CACHE_DIR}/.lock: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(CacheLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_parse_and_refuse_unknown_names() {
        assert_eq!(
            parse_stacks("--network", "ifupdown,networkd,nm").unwrap(),
            [Stack::Ifupdown, Stack::Networkd, Stack::Nm]
        );
        let e = parse_stacks("--network", "ifupdown,netplan").unwrap_err();
        assert!(e.to_string().contains("netplan"), "{e}");
        assert!(parse_stacks("--network", "").is_err());
    }

    #[test]
    fn recipes_differ_per_stack_and_carry_no_cluster_package() {
        let keys: std::collections::BTreeSet<String> = Stack::ALL
            .iter()
            .flat_map(|s| Suite::ALL.map(|u| Recipe::of(*s, u).key()))
            .collect();
        assert_eq!(keys.len(), 6, "one image per stack and suite");
        for s in Stack::ALL {
            let r = Recipe::of(s, Suite::Bookworm);
            for p in mirror_packages() {
                assert!(!r.packages.contains(&p), "{s} image has {p}");
            }
            assert!(r.customize.contains("ssh_host_"));
            assert!(r.customize.contains("trusted=yes"));
        }
        assert_eq!(
            Recipe::of(Stack::Nm, Suite::Trixie).key(),
            Recipe::of(Stack::Nm, Suite::Trixie).key()
        );
    }

    /// The hook is valid sh for every stack, and run on a scratch root
    /// it writes the stack's files (networkd's `systemctl --root` aside).
    #[test]
    fn the_customize_hook_runs() {
        for s in Stack::ALL {
            let hook = customize_script(s);
            let out = Command::new("sh")
                .args(["-n", "-c", &hook])
                .output()
                .unwrap();
            assert!(out.status.success(), "{s}: {out:?}");
        }
        let root = tempfile::tempdir().unwrap();
        for d in ["etc/ssh", "etc/apt/sources.list.d", "etc/network"] {
            fs::create_dir_all(root.path().join(d)).unwrap();
        }
        fs::write(root.path().join("etc/ssh/ssh_host_ed25519_key"), "k").unwrap();
        for s in [Stack::Ifupdown, Stack::Nm] {
            let out = Command::new("sh")
                .args(["-c", &customize_script(s), "hook"])
                .arg(root.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "{s}: {out:?}");
        }
        let read = |p: &str| fs::read_to_string(root.path().join(p)).unwrap();
        assert!(!root.path().join("etc/ssh/ssh_host_ed25519_key").exists());
        assert_eq!(
            read("etc/apt/sources.list"),
            format!("deb [trusted=yes] http://{MIRROR_HOST}/{MIRROR_PATH} ./\n")
        );
        assert!(read("etc/network/interfaces").starts_with("auto lo\n"));
        assert_eq!(
            read("etc/NetworkManager/conf.d/lab.conf"),
            "[main]\nno-auto-default=*\n"
        );
    }

    /// The mirror carries every package apply may install on a Debian node
    /// (derived from the family's table), and exactly today's set: a change
    /// here changes the mirror's cache key (rebuilt once).
    #[test]
    fn the_mirror_carries_every_debian_package_the_catalog_needs() {
        let mirror = mirror_packages();
        for p in crate::catalog::packages_of(&crate::family::DEBIAN) {
            assert!(mirror.contains(&p), "the lab's mirror lacks {p}");
        }
        let mut got = mirror.clone();
        got.sort_unstable();
        assert_eq!(
            got,
            [
                "chrony",
                "clustershell",
                "dnsmasq",
                "iptables",
                "iptables-persistent",
                "libnfs-utils",
                "man-db",
                "munge",
                "netfilter-persistent",
                "nfs-common",
                "nfs-ganesha",
                "nfs-ganesha-vfs",
                "nfs-kernel-server",
                "nftables",
                "openmpi-bin",
                "pdsh",
                "slurm-client",
                "slurmctld",
                "slurmd",
            ]
        );
    }

    #[test]
    fn closure_keeps_real_packages_only() {
        let text = "dnsmasq\n  Depends: libc6\n  Depends: <awk>\n    mawk\nlibc6\n<awk>\nmawk\n";
        assert_eq!(parse_closure(text), ["dnsmasq", "libc6", "mawk"]);
    }
}
