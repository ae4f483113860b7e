//! Templates: the built-in set embedded in the binary, a user override
//! directory (same relative paths), and the minijinja environment (strict
//! undefined, trim_blocks, lstrip_blocks, keep_trailing_newline). Every
//! render is bounded: [`RENDER_FUEL`] steps and [`MAX_RENDER_BYTES`] of
//! output, so an override with runaway loops or a string bomb is an error
//! naming it, not a hang; `render_budget` bounds its memory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minijinja::{Environment, UndefinedBehavior};

use crate::error::{Error, Result};

macro_rules! embed {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/", $path)))),*]
    };
}

/// Every built-in template, by its path relative to `templates/`.
pub const BUILTIN: &[(&str, &str)] = embed![
    "common/etc/NetworkManager/system-connections/clusterctl-lan.nmconnection.j2",
    "common/etc/cloud/cloud.cfg.d/99-clusterctl-network.cfg.j2",
    "common/etc/clusterctl/hostfile.mpich.j2",
    "common/etc/clusterctl/hostfile.openmpi.j2",
    "common/etc/hostname.j2",
    "common/etc/hosts.j2",
    "common/etc/munge/munge.key.j2",
    "common/etc/netplan/90-clusterctl.yaml.j2",
    "common/etc/profile.d/clusterctl-mpi.sh.j2",
    "common/etc/slurm/cgroup.conf.j2",
    "common/etc/slurm/slurm.conf.j2",
    "common/etc/ssh/clusterctl-authorized-keys.j2",
    "common/etc/ssh/clusterctl_authorized_keys.j2",
    "common/etc/ssh/shosts.equiv.j2",
    "common/etc/ssh/ssh_config.d/clusterctl-users.conf.j2",
    "common/etc/ssh/ssh_config.d/clusterctl.conf.j2",
    "common/etc/ssh/ssh_known_hosts.j2",
    "common/etc/ssh/sshd_config.d/clusterctl-users.conf.j2",
    "common/etc/systemd/network/10-clusterctl-lan.network.j2",
    "common/root/.ssh/authorized_keys.j2",
    "head/etc/chrony/chrony.conf.j2",
    "head/etc/chrony.conf.j2",
    "head/etc/clustershell/clush.conf.d/clusterctl.conf.j2",
    "head/etc/clustershell/groups.d/local.cfg.j2",
    "head/etc/clustershell/groups.j2",
    "head/etc/dnsmasq.d/clusterctl.conf.j2",
    "head/etc/exports.j2",
    "head/etc/ganesha/ganesha.conf.j2",
    "head/etc/genders.j2",
    "head/etc/iptables/rules-save.j2",
    "head/etc/iptables/rules.v4.j2",
    "head/etc/network/interfaces.d/clusterctl.j2",
    "head/etc/nftables.conf.j2",
    "head/etc/pdsh/rcmd_default.j2",
    "head/etc/sysconfig/iptables.j2",
    "head/etc/sysconfig/nftables.conf.j2",
    "head/etc/sysctl.d/90-clusterctl.conf.j2",
    "head/var/lib/clusterctl/slurm-nodes.j2",
    "worker/etc/chrony/chrony.conf.j2",
    "worker/etc/chrony.conf.j2",
    "worker/etc/fstab.j2",
    "worker/etc/iptables/rules-save.j2",
    "worker/etc/iptables/rules.v4.j2",
    "worker/etc/network/interfaces.d/clusterctl.j2",
    "worker/etc/nftables.conf.j2",
    "worker/etc/resolv.conf.j2",
    "worker/etc/sysconfig/iptables.j2",
    "worker/etc/sysconfig/nftables.conf.j2",
    "worker/root/.ssh/id_clusterctl.j2",
    "worker/root/.ssh/id_clusterctl.pub.j2",
];

/// The steps (minijinja instructions) one render may take. The built-ins
/// of a 10,000-worker cluster fit in a quarter of it
/// (`the_builtins_fit_their_budget`); a release build runs out of it in
/// about 0.15 s.
pub const RENDER_FUEL: u64 = 4_000_000;

/// The most one render may write: every built-in file of a 10,000-worker
/// cluster is under 2 MiB. Half of `render_budget::RENDER_MEMORY`, so the
/// output's own buffer stays inside the memory bound.
pub const MAX_RENDER_BYTES: usize = 8 * 1024 * 1024;

/// The first line of every whole file clusterctl owns.
pub const HEADER: &str =
    "# Managed by clusterctl: do not edit, changes are overwritten by `clusterctl apply`.";

/// The loaded template set: built-ins with any overrides applied.
pub struct Templates {
    env: Environment<'static>,
    /// Which templates came from the override directory (for messages).
    overridden: BTreeMap<String, PathBuf>,
    /// Templates whose output cannot depend on the node: they never name
    /// `node` and pull in no other template. Rendered once per cluster.
    node_independent: std::collections::BTreeSet<String>,
}

impl Templates {
    /// Built-ins, overridden by files of the same relative path under `dir`.
    /// An override for a name clusterctl does not know is an error (a typo would
    /// otherwise be silently ignored).
    pub fn load(dir: Option<&Path>) -> Result<Templates> {
        let mut sources: BTreeMap<String, String> = BUILTIN
            .iter()
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect();
        let mut overridden = BTreeMap::new();
        if let Some(dir) = dir {
            for file in walk(dir)? {
                let rel = file
                    .strip_prefix(dir)
                    .unwrap_or(&file)
                    .to_string_lossy()
                    .replace('\\', "/");
                if !sources.contains_key(&rel) {
                    return Err(Error::Template {
                        name: rel,
                        message: format!("{} overrides no built-in template", file.display()),
                    });
                }
                let text = read_template(&file)?;
                sources.insert(rel.clone(), text);
                overridden.insert(rel, file);
            }
        }
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(RENDER_FUEL));
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .map_err(|e| Error::Template {
                name: "(syntax)".into(),
                message: describe(&e),
            })?;
        env.set_syntax(syntax);
        let mut node_independent = std::collections::BTreeSet::new();
        for (name, text) in sources {
            let composes = ["include", "import", "extends"]
                .iter()
                .any(|w| text.contains(w));
            // Compiling folds constant expressions (`'x' * 60000000`
            // becomes a 60 MB string here, not at render time): bounded
            // like a render.
            let label = match overridden.get(&name) {
                Some(p) => format!("{name} (override {})", p.display()),
                None => name.clone(),
            };
            let compiled = {
                let _armed = crate::render_budget::Armed::new(&label);
                env.add_template_owned(name.clone(), text)
            };
            compiled.map_err(|e| Error::Template {
                name: name.clone(),
                message: describe(&e),
            })?;
            let uses_node = env
                .get_template(&name)
                .map(|t| t.undeclared_variables(false).contains("node"))
                .unwrap_or(true);
            if !uses_node && !composes {
                node_independent.insert(name);
            }
        }
        Ok(Templates {
            env,
            overridden,
            node_independent,
        })
    }

    /// Render one template with a serializable context.
    pub fn render<C: serde::Serialize>(&self, name: &str, ctx: &C) -> Result<String> {
        self.render_value(name, minijinja::Value::from(minijinja::value::Serde(ctx)))
    }

    /// A smaller step budget, for tests that measure the built-ins.
    #[cfg(test)]
    pub fn set_fuel(&mut self, fuel: u64) {
        self.env.set_fuel(Some(fuel));
    }

    /// The template's output is the same for every node of a cluster.
    pub fn is_node_independent(&self, name: &str) -> bool {
        self.node_independent.contains(name)
    }

    /// Render one template with a context already converted to a template
    /// value (shared parts are reference-counted, not copied).
    pub fn render_value(&self, name: &str, ctx: minijinja::Value) -> Result<String> {
        let tmpl = self.env.get_template(name).map_err(|e| Error::Template {
            name: name.to_string(),
            message: describe(&e),
        })?;
        let label = match self.overridden.get(name) {
            Some(p) => format!("{name} (override {})", p.display()),
            None => name.to_string(),
        };
        let mut out = Capped::default();
        let rendered = {
            let _armed = crate::render_budget::Armed::new(&label);
            tmpl.render_captured_to(ctx, &mut out).map(drop)
        };
        match rendered {
            Ok(_) => {}
            Err(_) if out.over => {
                return Err(Error::Template {
                    name: label.clone(),
                    message: format!(
                        "writes more than {} MiB; no file clusterctl manages is that large (a runaway loop or string?)",
                        MAX_RENDER_BYTES >> 20
                    ),
                })
            }
            Err(e) if e.kind() == minijinja::ErrorKind::OutOfFuel => {
                return Err(Error::Template {
                    name: label.clone(),
                    message: format!(
                        "takes more than {RENDER_FUEL} steps to render; stopped (a runaway loop?)"
                    ),
                })
            }
            Err(e) => {
                return Err(Error::Template {
                    name: label.clone(),
                    message: describe(&e),
                })
            }
        }
        String::from_utf8(out.buf).map_err(|_| Error::Template {
            name: label.clone(),
            message: "wrote bytes that are not UTF-8".into(),
        })
    }
}

/// A render's output, refused past [`MAX_RENDER_BYTES`].
#[derive(Default)]
struct Capped {
    buf: Vec<u8>,
    over: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + b.len() > MAX_RENDER_BYTES {
            self.over = true;
            return Err(std::io::Error::other("output too large"));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn describe(e: &minijinja::Error) -> String {
    let mut s = e.to_string();
    if let Some(line) = e.line() {
        // minijinja 3 already says `(in NAME:LINE)`; older wording does not.
        if !s.contains("line") && !s.contains(&format!(":{line})")) {
            s.push_str(&format!(" (line {line})"));
        }
    }
    s
}

/// The largest template file read (a template is a few kilobytes).
const MAX_TEMPLATE_BYTES: u64 = 1024 * 1024;

/// An override template, read with a size cap (a link to `/dev/zero` fails
/// at once).
fn read_template(file: &Path) -> Result<String> {
    use std::io::Read;
    let err = |source| Error::Read {
        path: file.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    crate::validate::open_no_hang(file)
        .map_err(err)?
        .take(MAX_TEMPLATE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(err)?;
    if bytes.len() as u64 > MAX_TEMPLATE_BYTES {
        return Err(Error::Template {
            name: file.display().to_string(),
            message: "is larger than 1 MiB; a template is a few kilobytes".into(),
        });
    }
    String::from_utf8(bytes).map_err(|_| Error::Template {
        name: file.display().to_string(),
        message: "is not UTF-8 text".into(),
    })
}

/// Deeper than any built-in template path (`head/etc/network/interfaces.d/x.j2`).
const MAX_TEMPLATE_DEPTH: usize = 8;

/// Every regular file under `dir`, sorted. Bounded: a directory deeper
/// than any built-in path (a symlink loop) is an error, not a hang.
fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let depth = d.strip_prefix(dir).map_or(0, |r| r.components().count());
        if depth > MAX_TEMPLATE_DEPTH {
            return Err(Error::Template {
                name: d.display().to_string(),
                message: format!(
                    "is {depth} directories deep in {}; no template is (a symlink loop?)",
                    dir.display()
                ),
            });
        }
        let entries = std::fs::read_dir(&d).map_err(|source| Error::Read {
            path: d.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| Error::Read {
                path: d.clone(),
                source,
            })?;
            let p = entry.path();
            let kind = std::fs::symlink_metadata(&p).map_err(|source| Error::Read {
                path: p.clone(),
                source,
            })?;
            // An override is a file of the user's own: a link would make a
            // node's file whatever it points at (`/etc/shadow` as every
            // node's hostname), and a link to a directory can loop.
            if kind.file_type().is_symlink() {
                return Err(Error::Template {
                    name: p.display().to_string(),
                    message: "is a symbolic link; an override must be a file of its own (copy the file instead)".into(),
                });
            }
            if kind.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The override directory: `--templates DIR`, else `templates/` beside the
/// inventory when it exists.
pub fn override_dir(inventory: &Path, flag: Option<&Path>) -> Result<Option<PathBuf>> {
    if let Some(dir) = flag {
        if !dir.is_dir() {
            return Err(Error::usage(
                format!("template directory {} does not exist", dir.display()),
                Some("pass an existing directory to --templates"),
            ));
        }
        return Ok(Some(dir.to_path_buf()));
    }
    let beside = inventory
        .parent()
        .unwrap_or(Path::new("."))
        .join("templates");
    Ok(beside.is_dir().then_some(beside))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file under templates/ is embedded, and every embedded one exists:
    /// a template added on disk but not here would silently never render.
    #[test]
    fn builtin_list_matches_templates_dir() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let on_disk: Vec<String> = walk(&dir)
            .unwrap()
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned())
            .collect();
        let embedded: Vec<String> = BUILTIN.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(on_disk, embedded);
    }

    #[test]
    fn node_independent_templates_are_found() {
        let t = Templates::load(None).unwrap();
        assert!(t.is_node_independent("common/etc/hosts.j2"));
        assert!(t.is_node_independent("common/etc/clusterctl/hostfile.openmpi.j2"));
        assert!(!t.is_node_independent("head/etc/dnsmasq.d/clusterctl.conf.j2"));
        assert!(!t.is_node_independent("worker/etc/network/interfaces.d/clusterctl.j2"));
    }

    #[test]
    fn a_symlink_loop_in_the_override_dir_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(".", dir.path().join("loop")).unwrap();
        let err = Templates::load(Some(dir.path())).err().expect("refused");
        assert!(err.to_string().contains("is a symbolic link"), "{err}");
    }

    /// Regression (#22): an override that is a link to another file was
    /// followed (every node's /etc/hostname became the target's contents).
    #[test]
    fn an_override_that_is_a_symlink_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("common/etc")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("common/etc/hostname.j2"))
            .unwrap();
        let err = Templates::load(Some(dir.path())).err().expect("refused");
        assert!(
            err.to_string().contains("hostname.j2: is a symbolic link"),
            "{err}"
        );
    }

    /// Regression (#22): an override (or inventory) that is a named pipe
    /// nobody writes hung `check`; it reads as empty now.
    #[test]
    fn a_fifo_override_does_not_hang() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("common/etc")).unwrap();
        let fifo = dir.path().join("common/etc/hostname.j2");
        let c = std::ffi::CString::new(fifo.display().to_string()).unwrap();
        // SAFETY: mkfifo with a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(read_template(&fifo).unwrap(), "");
        let inv = dir.path().join("inventory.yaml");
        let c = std::ffi::CString::new(inv.display().to_string()).unwrap();
        // SAFETY: as above.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(crate::validate::read_bounded(&inv).unwrap(), "");
    }

    #[test]
    fn strict_undefined_is_an_error() {
        let t = Templates::load(None).unwrap();
        let err = t
            .render("common/etc/hosts.j2", &serde_json_like())
            .unwrap_err();
        assert!(err.to_string().contains("undefined"), "{err}");
    }

    /// An override directory holding `common/etc/hostname.j2` = `text`.
    fn hostname_override(text: &str) -> (tempfile::TempDir, Templates) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("common/etc");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("hostname.j2"), text).unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        (dir, t)
    }

    #[test]
    fn a_runaway_loop_in_an_override_stops_with_its_name() {
        let (_dir, t) = hostname_override(
            "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        );
        let started = std::time::Instant::now();
        let err = t.render("common/etc/hostname.j2", &()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("common/etc/hostname.j2 (override "), "{msg}");
        assert!(msg.contains("takes more than 4000000 steps"), "{msg}");
        // Not a timed assertion: a figure for whoever reads the test output.
        eprintln!("out of fuel after {:?}", started.elapsed());
    }

    #[test]
    fn a_string_bomb_in_an_override_stops_with_its_name() {
        // Each piece is under minijinja's own 100 MB repeat limit; together
        // they would be gigabytes.
        let (_dir, t) =
            hostname_override("{% for i in range(1000) %}{{ 'x' * 10000000 }}{% endfor %}");
        let msg = t
            .render("common/etc/hostname.j2", &())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("writes more than 8 MiB"), "{msg}");
    }

    fn serde_json_like() -> BTreeMap<String, String> {
        BTreeMap::new()
    }
}
