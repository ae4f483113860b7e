//! One lab host: the files that make it a fresh machine (identity, sshd,
//! DHCP client, boot script), how the controller starts it (`unshare` into
//! new namespaces, running `clusterctl lab init-host` as its PID 1) and the
//! PID 1 itself: build the root with the embedded `host-setup.sh`, wait for
//! its network, run its boot script (Debian sysvinit style: `service ssh
//! start`, `dhclient`), then reap orphans forever.
//!
//! The handshake with `lab up` is line-based on the init's stdin/stdout:
//! init says `pid N` (its PID in the root namespace), `ready` (root built),
//! waits for `go` (veths plugged in), says `booted`, then closes both.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::state::{Paths, Proc};
use super::topology::{HostSpec, Role};
use crate::error::{Error, Result};
use crate::transport::shell_quote;

const SETUP_SCRIPT: &str = include_str!("host-setup.sh");

/// PATH inside every host.
pub const HOST_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The error for a failed write of `path`.
fn write_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// Write a file created with its final mode (parents created as needed), so a
/// private key is never readable even briefly.
pub(super) fn write_file(path: &Path, text: &str, mode: u32) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(write_err(dir))?;
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(write_err(path))?;
    std::io::Write::write_all(&mut f, text.as_bytes()).map_err(write_err(path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(write_err(path))
}

/// Remove a directory tree if it is there (a fresh start for a host's files).
pub(super) fn remove_tree(path: &Path) -> Result<()> {
    if path.exists() {
        fs::remove_dir_all(path).map_err(write_err(path))?;
    }
    Ok(())
}

pub(super) fn mkdir(path: &Path, mode: u32) -> Result<()> {
    fs::create_dir_all(path).map_err(write_err(path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(write_err(path))
}

/// Generate an ed25519 key pair at `path` unless one is there already.
pub fn ensure_key(path: &Path, comment: &str) -> Result<()> {
    let public = path.with_extension("pub");
    if path.exists() && public.exists() {
        return Ok(());
    }
    let _ = fs::remove_file(path);
    let _ = fs::remove_file(&public);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|source| Error::Write {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let p = path.to_string_lossy();
    super::net::run(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", &p],
    )?;
    Ok(())
}

/// The public half of a key pair (`KEY.pub`), one line.
pub fn public_key(path: &Path) -> Result<String> {
    let public = path.with_extension("pub");
    let text = fs::read_to_string(&public).map_err(|source| Error::Read {
        path: public.clone(),
        source,
    })?;
    Ok(text.trim().to_string())
}

/// A stable machine-id for a host, created once.
pub(super) fn machine_id(paths: &Paths, host: &str) -> Result<String> {
    let path = paths.host_dir(host).join("machine-id");
    if let Ok(id) = fs::read_to_string(&path) {
        let id = id.trim().to_string();
        if id.len() == 32 {
            return Ok(id);
        }
    }
    let uuid =
        fs::read_to_string("/proc/sys/kernel/random/uuid").map_err(|source| Error::Read {
            path: "/proc/sys/kernel/random/uuid".into(),
            source,
        })?;
    let id: String = uuid.trim().chars().filter(|c| *c != '-').collect();
    write_file(&path, &format!("{id}\n"), 0o644)?;
    Ok(id)
}

/// The lab's sshd: key-only root login, many concurrent starts (workers are
/// reached through the head, 50 at once must work).
fn sshd_config(host: &str) -> String {
    format!(
        "# sshd of lab host {host} (written by clusterctl lab)\n\
         Include /etc/ssh/sshd_config.d/*.conf\n\
         Port 22\n\
         HostKey /etc/ssh/ssh_host_ed25519_key\n\
         PermitRootLogin prohibit-password\n\
         PubkeyAuthentication yes\n\
         AuthorizedKeysFile .ssh/authorized_keys\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM no\n\
         UseDNS no\n\
         MaxStartups 200:30:400\n\
         MaxSessions 100\n\
         PrintMotd no\n\
         AcceptEnv LANG LC_*\n\
         Subsystem sftp /usr/lib/openssh/sftp-server\n"
    )
}

/// Debian's dhclient gives up after 60 s and sleeps 5 minutes; a lab worker
/// must keep asking every few seconds until the head's dnsmasq answers.
pub(super) const DHCLIENT_CONF: &str = "\
# dhclient of a lab worker (written by clusterctl lab): retry every few seconds, forever.
option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;
send host-name = gethostname();
request subnet-mask, broadcast-address, time-offset, routers,
        domain-name, domain-name-servers, domain-search, host-name,
        interface-mtu, rfc3442-classless-static-routes;
timeout 86400;
retry 5;
initial-interval 1;
backoff-cutoff 4;
";

/// The wan host's DNS server: the upstream the head's dnsmasq forwards to.
/// It knows `internet.test` (and names below it) and nothing else; it never
/// forwards anywhere.
pub(super) fn wan_dns_conf(addr: std::net::Ipv4Addr) -> String {
    format!(
        "# The lab's stand-in for the internet's DNS (written by clusterctl lab).\n\
         # Answers *.internet.test with {addr}; refuses to forward anything else.\n\
         no-resolv\n\
         no-hosts\n\
         interface=eth0\n\
         bind-interfaces\n\
         no-dhcp-interface=eth0\n\
         address=/internet.test/{addr}\n"
    )
}

/// The boot script PID 1 runs once the host's interfaces exist (`rc.sh`).
fn rc_script(spec: &HostSpec) -> String {
    let role = match spec.role {
        Role::Wan => "wan",
        Role::Head => "head",
        Role::Worker => "worker",
    };
    let mut s = format!(
        "#!/bin/sh\n# Boot script of lab host {}.\nrole={role}\ngateway={}\nset --",
        spec.name,
        shell_quote(&spec.gateway.map(|g| g.to_string()).unwrap_or_default()),
    );
    for iface in &spec.ifaces {
        let addr = iface.address.map(|a| a.to_string()).unwrap_or_default();
        s.push_str(&format!(
            " {} {}",
            shell_quote(&iface.name),
            shell_quote(&addr)
        ));
    }
    s.push('\n');
    s.push_str(include_str!("rc.sh"));
    s
}

/// Write the tree copied over a host's root at boot, and its host key.
pub fn render_files(
    paths: &Paths,
    spec: &HostSpec,
    controller_pub: &str,
    serve: Option<&Path>,
) -> Result<()> {
    let host = spec.name.as_str();
    let files = paths.host_files(host);
    remove_tree(&files)?;
    mkdir(&paths.host_mnt(host), 0o700)?;
    write_identity(paths, host, &files, controller_pub)?;
    let f = |p: &str| files.join(p);
    write_file(
        &f("etc/resolv.conf"),
        &format!("# lab host {host}: no resolver (none leaks from the machine); DHCP or clusterctl sets one\n"),
        0o644,
    )?;
    write_file(&f("etc/ssh/sshd_config"), &sshd_config(host), 0o644)?;
    mkdir(&f("etc/ssh/sshd_config.d"), 0o755)?;
    write_file(&f("etc/dhcp/dhclient.conf"), DHCLIENT_CONF, 0o644)?;
    write_boot_files(spec, serve, &files)?;
    // Plain dotfiles: the machine's own may run slow init on every SSH command.
    write_file(
        &f("root/.bashrc"),
        "# lab host: plain bashrc\n[ -z \"$PS1\" ] && return\nPS1='\\u@\\h:\\w\\$ '\n",
        0o644,
    )?;
    write_file(
        &f("root/.profile"),
        "# lab host: plain profile\n[ -n \"$BASH_VERSION\" ] && [ -f ~/.bashrc ] && . ~/.bashrc\n",
        0o644,
    )?;
    mkdir(&f("var/lib/dhcp"), 0o755)?;
    Ok(())
}

/// A host's identity and access under `root` (its `/`, light or systemd):
/// name, hosts file, machine-id, SSH host key pair (made once) and the
/// controller's key for root.
pub(super) fn write_identity(
    paths: &Paths,
    host: &str,
    root: &Path,
    controller_pub: &str,
) -> Result<()> {
    ensure_key(&paths.host_key(host), &format!("root@{host}"))?;
    let key = fs::read_to_string(paths.host_key(host)).map_err(|source| Error::Read {
        path: paths.host_key(host),
        source,
    })?;
    let f = |p: &str| root.join(p);
    write_file(&f("etc/hostname"), &format!("{host}\n"), 0o644)?;
    // No `127.0.1.1 <hostname>` line: dnsmasq on the head would hand that
    // loopback address to workers asking for the head.
    write_file(
        &f("etc/hosts"),
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
        0o644,
    )?;
    write_file(
        &f("etc/machine-id"),
        &format!("{}\n", machine_id(paths, host)?),
        0o444,
    )?;
    write_file(&f("etc/ssh/ssh_host_ed25519_key"), &key, 0o600)?;
    write_file(
        &f("etc/ssh/ssh_host_ed25519_key.pub"),
        &format!("{}\n", public_key(&paths.host_key(host))?),
        0o644,
    )?;
    mkdir(&f("root"), 0o700)?;
    mkdir(&f("root/.ssh"), 0o700)?;
    write_file(
        &f("root/.ssh/authorized_keys"),
        &format!("{controller_pub}\n"),
        0o600,
    )
}

/// What a light host's PID 1 reads at boot under `files`: its boot script,
/// role, the mirror it serves (wan) and the wan's DNS server config.
fn write_boot_files(spec: &HostSpec, serve: Option<&Path>, files: &Path) -> Result<()> {
    let f = |p: &str| files.join(p);
    if spec.role == Role::Wan {
        if let Some(addr) = spec.ifaces.first().and_then(|i| i.address) {
            write_file(
                &f("etc/dnsmasq.d/lab-wan.conf"),
                &wan_dns_conf(addr.addr()),
                0o644,
            )?;
        }
    }
    write_file(&f("etc/clusterctl-lab/rc"), &rc_script(spec), 0o755)?;
    if let Some(dir) = serve {
        write_file(
            &f("etc/clusterctl-lab/serve"),
            &format!("{}\n", dir.display()),
            0o644,
        )?;
    }
    write_file(
        &f("etc/clusterctl-lab/role"),
        &format!("{:?}\n", spec.role).to_lowercase(),
        0o644,
    )
}

/// A host process just started by `lab up`, with its handshake channel.
pub struct Spawned {
    pub name: String,
    pub unshare: Proc,
    pub init: Option<Proc>,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

/// Start a host: `unshare` new namespaces and run `clusterctl lab init-host`
/// as their PID 1. Killing `unshare` kills the host (`--kill-child`), and
/// killing the init ends every process of the host (PID namespace).
pub fn spawn(paths: &Paths, prefix: &str, host: &str) -> Result<Spawned> {
    spawn_with(
        paths,
        host,
        &[
            "--pid",
            "--fork",
            "--kill-child=SIGKILL",
            "--mount",
            "--propagation",
            "private",
            "--uts",
            "--ipc",
            "--net",
            "--",
        ],
        &["lab", "init-host", "--prefix", prefix, host],
    )
}

/// `unshare UNSHARE_ARGS -- <this binary> ARGS` with the handshake pipes,
/// stderr to the host's console log, in its own process group.
pub fn spawn_with(
    paths: &Paths,
    host: &str,
    unshare_args: &[&str],
    args: &[&str],
) -> Result<Spawned> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::lab(format!("cannot find my own binary: {e}")))?;
    let log_path = paths.console_log(host);
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|source| Error::Write {
            path: log_path.clone(),
            source,
        })?;
    let mut child = Command::new("unshare")
        .args(unshare_args)
        .arg(&exe)
        .args(args)
        .env_clear()
        .env("PATH", HOST_PATH)
        .env("HOME", "/root")
        .env("LANG", "C.UTF-8")
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        // Own process group: a Ctrl-C on `lab up` does not reach the hosts.
        .process_group(0)
        .spawn()
        .map_err(|e| Error::Lab {
            message: format!("cannot start host {host} with unshare: {e}"),
            help: Some("install util-linux: sudo scripts/install-deps.sh".into()),
        })?;
    let pid = child.id() as i32;
    let unshare =
        Proc::of(pid).ok_or_else(|| Error::lab(format!("host {host}: unshare exited at once")))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::lab("no stdout pipe"))?;
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Ok(Spawned {
        name: host.to_string(),
        unshare,
        init: None,
        stdin: child.stdin.take(),
        child,
        lines,
    })
}

impl Spawned {
    /// Wait for the next handshake line from the host's init.
    pub fn expect(&mut self, what: &str, deadline: Instant, log: &Path) -> Result<String> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        let fail = |msg: String| Error::Lab {
            message: format!("host {}: {msg}", self.name),
            help: Some(format!(
                "its console log is {}; `clusterctl lab down` cleans up",
                log.display()
            )),
        };
        match self.lines.recv_timeout(timeout) {
            Ok(line) if line.starts_with(what) => Ok(line[what.len()..].trim().to_string()),
            Ok(line) => Err(fail(format!("expected `{what}`, got `{line}`"))),
            Err(RecvTimeoutError::Timeout) => Err(fail(format!("no `{what}` in time"))),
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.try_wait().ok().flatten();
                Err(fail(format!(
                    "its init exited before `{what}`{}",
                    status.map(|s| format!(" ({s})")).unwrap_or_default()
                )))
            }
        }
    }

    /// Tell the init its interfaces are plugged in.
    pub fn go(&mut self) -> Result<()> {
        let name = self.name.clone();
        let mut stdin = self
            .stdin
            .take()
            .ok_or_else(|| Error::lab(format!("host {name}: handshake already done")))?;
        stdin
            .write_all(b"go\n")
            .map_err(|e| Error::lab(format!("host {name}: cannot signal its init: {e}")))
    }
}

/// One handshake line to `lab up` (stdout), flushed at once.
pub(super) fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// A Stdio that writes to our stderr (the host's console log).
fn console() -> Stdio {
    match std::io::stderr().as_fd().try_clone_to_owned() {
        Ok(fd) => Stdio::from(fd),
        Err(_) => Stdio::null(),
    }
}

/// PID 1 of a lab host (`clusterctl lab init-host`). Never returns once booted.
pub fn init_host(prefix: &str, host: &str) -> Result<i32> {
    if std::process::id() != 1 {
        return Err(Error::Lab {
            message: "`lab init-host` is internal: it runs as PID 1 of a lab host".into(),
            help: Some("use `clusterctl lab up`".into()),
        });
    }
    let paths = Paths::new(prefix);
    // /proc is still the machine's here, so /proc/self is our PID out there.
    let outer: i32 = fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_string_lossy().parse().ok())
        .unwrap_or(0);
    say(&format!("pid {outer}"));

    let status = Command::new("/bin/sh")
        .args(["-c", SETUP_SCRIPT])
        .env("LAB_HOST", host)
        .env("LAB_MNT", paths.host_mnt(host))
        .env("LAB_FILES", paths.host_files(host))
        .stdin(Stdio::null())
        .stdout(console())
        .status();
    match status {
        Ok(s) if s.success() => say("ready"),
        other => {
            say(&format!("error building the root failed: {other:?}"));
            return Ok(1);
        }
    }

    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    if line.trim() != "go" {
        say("error no `go` from lab up");
        return Ok(1);
    }
    let rc = PathBuf::from("/etc/clusterctl-lab/rc");
    let status = Command::new("/bin/sh")
        .arg(&rc)
        .env_clear()
        .env("PATH", HOST_PATH)
        .env("HOME", "/root")
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null())
        .stdout(console())
        .status();
    match status {
        Ok(s) if s.success() => say("booted"),
        other => say(&format!(
            "error boot script {} failed: {other:?}",
            rc.display()
        )),
    }
    // The wan host of a systemd lab serves the apt mirror (see image.rs).
    if let Ok(dir) = fs::read_to_string("/etc/clusterctl-lab/serve") {
        match std::net::TcpListener::bind("0.0.0.0:80") {
            Ok(listener) => {
                let dir = PathBuf::from(dir.trim());
                std::thread::spawn(move || super::serve::serve(listener, dir));
            }
            Err(e) => eprintln!("clusterctl lab: cannot serve the mirror on port 80: {e}"),
        }
    }
    release_handshake();
    reap_forever()
}

/// Let go of the handshake pipes (stdin and stdout onto /dev/null): `lab up`
/// is done with us.
pub(super) fn release_handshake() {
    if let Ok(null) = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        use std::os::fd::AsRawFd;
        // SAFETY: dup2 onto our own stdin/stdout descriptors.
        unsafe {
            libc::dup2(null.as_raw_fd(), 0);
            libc::dup2(null.as_raw_fd(), 1);
        }
    }
}

/// The reaper: collect every child and orphan of the host, forever.
fn reap_forever() -> ! {
    loop {
        let mut status = 0;
        // SAFETY: waitpid(2) on any child with a valid status pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid < 0 {
            // ECHILD (nothing to wait for yet) or EINTR.
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::topology::Topology;

    /// Every host's boot script is valid sh and carries its own addresses:
    /// the head both of its interfaces, a worker none (it asks DHCP).
    #[test]
    fn boot_scripts_are_valid_sh_with_each_hosts_addresses() {
        let topo = Topology::new("cl", "198.51.100.0/24", "10.77.0.0/24", 1).unwrap();
        for spec in topo.hosts() {
            let s = rc_script(&spec);
            assert!(s.starts_with("#!/bin/sh\n"), "{s}");
            let out = Command::new("sh").args(["-n", "-c", &s]).output().unwrap();
            assert!(out.status.success(), "{}: {out:?}", spec.name);
            let set = s.lines().find(|l| l.starts_with("set --")).unwrap();
            match spec.role {
                Role::Head => assert!(set.contains(&topo.head_wan_addr().to_string()), "{set}"),
                Role::Worker => assert!(set.ends_with(" eth0 ''"), "{set}"),
                Role::Wan => assert!(s.contains("role=wan\n"), "{s}"),
            }
        }
    }
}
