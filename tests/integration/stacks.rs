//! Issue #11 offline: every network stack's and firewall backend's files,
//! chosen from a node's facts (or the inventory's pins), as snapshots for
//! the ready inventories; the rendered netplan files through the real
//! `netplan generate`, the nftables rulesets through `nft -c -f` and the
//! iptables ones through `iptables-restore --test`; a claim on the LAN
//! interface by another file kept or reported; the same policy (open ports)
//! in both firewalls.

use std::path::Path;
use std::process::Command;

use clusterctl::cluster::Cluster;
use clusterctl::desired::{desired, RenderedFile};
use clusterctl::facts::{self, Facts};
use clusterctl::templates::Templates;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The ready inventories the snapshots cover: DHCP + `lan: trust`, and
/// static + `lan: ssh-only`.
const INVENTORIES: &[&str] = &["lab", "static-8pc", "bramble-4pi"];

fn cluster(name: &str, backend: &str) -> Cluster {
    let path = root().join(format!("inventories/{name}.yaml"));
    let mut text = std::fs::read_to_string(&path).unwrap();
    if backend != "auto" {
        text = match text.find("\nfirewall:\n") {
            Some(i) => {
                let (a, b) = text.split_at(i + "\nfirewall:\n".len());
                format!("{a}  backend: {backend}\n{b}")
            }
            None => format!("{text}\nfirewall:\n  backend: {backend}\n"),
        };
    }
    Cluster::from_str(&text, &path).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"))
}

/// Facts of a node running `stack`, with nothing claiming its LAN port.
fn facts_for(stack: &str) -> Facts {
    let extra = match stack {
        "ifupdown" => "@@ifupdown classic\n",
        "networkmanager" => "@@active NetworkManager\n",
        "networkd" => "@@active systemd-networkd\n@@active systemd-resolved\n",
        "netplan" => {
            "@@active systemd-networkd\n@@cloud-init network\n@@netplan-file /etc/netplan/50-cloud-init.yaml\n"
        }
        _ => unreachable!(),
    };
    facts::parse(&format!(
        "@@os debian 12\n@@init systemd\n@@iptables nf_tables\n@@pkgmgr apt\n{extra}@@done\n"
    ))
    .unwrap()
}

const STACKS: &[&str] = &["ifupdown", "networkmanager", "networkd", "netplan"];

/// The interface and firewall files of the head and the first worker.
fn net_files(c: &Cluster, f: &Facts) -> Vec<(String, RenderedFile)> {
    let t = Templates::load(None).unwrap();
    let mut out = Vec::new();
    for node in [c.head.name.to_string(), c.workers[0].name.to_string()] {
        let d = desired(c, &t, &node, f).unwrap_or_else(|e| panic!("{node}: {e}"));
        for file in d.files {
            if file.step.ends_with("interface")
                || file.step.ends_with("firewall")
                || file.step.ends_with("nftables")
            {
                out.push((node.clone(), file));
            }
        }
    }
    out
}

fn show(files: &[(String, RenderedFile)]) -> String {
    let mut s = String::new();
    for (node, f) in files {
        s.push_str(&format!(
            "==> {node}: {} (mode {:04o})\n{}\n",
            f.path, f.mode, f.content
        ));
    }
    s
}

#[test]
fn snapshots_of_every_stack_and_backend() {
    for inv in INVENTORIES {
        for stack in STACKS {
            let files = net_files(&cluster(inv, "auto"), &facts_for(stack));
            insta::with_settings!({ snapshot_suffix => format!("{inv}-{stack}"), omit_expression => true }, {
                insta::assert_snapshot!("stack", show(&files));
            });
        }
        let files = net_files(&cluster(inv, "nftables"), &facts_for("ifupdown"));
        let fw: Vec<_> = files
            .into_iter()
            .filter(|(_, f)| f.step.ends_with("nftables"))
            .collect();
        assert_eq!(fw.len(), 2, "{inv}: head and worker rulesets");
        insta::with_settings!({ snapshot_suffix => format!("{inv}-nftables"), omit_expression => true }, {
            insta::assert_snapshot!("firewall", show(&fw));
        });
    }
}

/// NetworkManager keyfiles and netplan files are 0600 (NM ignores a
/// keyfile others can read; netplan warns).
#[test]
fn keyfiles_and_netplan_files_are_private() {
    for stack in ["networkmanager", "netplan"] {
        for (node, f) in net_files(&cluster("lab", "auto"), &facts_for(stack)) {
            if f.step.ends_with("interface") && !f.path.starts_with("/etc/cloud") {
                assert_eq!(f.mode, 0o600, "{node}: {}", f.path);
            }
        }
    }
}

/// Where cloud-init renders netplan, clusterctl's netplan file comes with
/// cloud-init told to keep off the network; without cloud-init, not.
#[test]
fn cloud_init_is_told_to_keep_off_the_network() {
    let has = |f: &Facts| {
        net_files(&cluster("lab", "auto"), f)
            .iter()
            .any(|(_, x)| x.path == "/etc/cloud/cloud.cfg.d/99-clusterctl-network.cfg")
    };
    assert!(has(&facts_for("netplan")));
    let mut f = facts_for("netplan");
    f.net.cloud_init_network = Some(false);
    assert!(!has(&f));
}

fn tool(name: &str) -> std::path::PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is not installed: run scripts/install-deps.sh (as root)");
}

/// Every rendered netplan file passes the real `netplan generate`, alone in
/// a scratch root (as apply's validator runs it).
#[test]
fn netplan_generate_accepts_every_rendered_file() {
    let mut checked = 0;
    for inv in INVENTORIES {
        for (node, f) in net_files(&cluster(inv, "auto"), &facts_for("netplan")) {
            if !f.path.starts_with("/etc/netplan/") {
                continue;
            }
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("etc/netplan/90-clusterctl.yaml");
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, &f.content).unwrap();
            std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
            let out = Command::new(tool("netplan"))
                .args(["generate", "--root-dir"])
                .arg(dir.path())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{inv} {node}: netplan rejects:\n{}\n{}",
                f.content,
                String::from_utf8_lossy(&out.stderr)
            );
            let unit = dir.path().join(format!(
                "run/systemd/network/10-netplan-{}.network",
                if node == "head" || *inv != "lab" {
                    f.content
                        .lines()
                        .find(|l| l.starts_with("    ") && !l.starts_with("     "))
                        .unwrap()
                        .trim()
                        .trim_end_matches(':')
                        .to_string()
                } else {
                    "eth0".to_string()
                }
            ));
            assert!(unit.exists(), "{inv} {node}: no {}", unit.display());
            checked += 1;
        }
    }
    assert_eq!(checked, 2 * INVENTORIES.len());
}

/// Run a validator on every rendered file of one backend.
fn validate_all(backend: &str, step_suffix: &str, tool_name: &str, args: &[&str]) {
    let mut checked = 0;
    for inv in INVENTORIES {
        for (node, f) in net_files(&cluster(inv, backend), &facts_for("ifupdown")) {
            if !f.step.ends_with(step_suffix) {
                continue;
            }
            let tmp = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(tmp.path(), &f.content).unwrap();
            let out = Command::new(tool(tool_name))
                .args(args)
                .arg(tmp.path())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{inv} {node}: {tool_name} rejects {}:\n{}\n{}",
                f.path,
                f.content,
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 2 * INVENTORIES.len());
}

#[test]
#[ignore = "needs root (nft -c talks to the kernel): run with --include-ignored (CI does)"]
fn nft_accepts_every_rendered_ruleset() {
    validate_all("nftables", "nftables", "nft", &["-c", "-f"]);
}

#[test]
#[ignore = "needs root (iptables-restore --test): run with --include-ignored (CI does)"]
fn iptables_accepts_every_rendered_ruleset_under_both_variants() {
    validate_all("iptables", "firewall", "iptables-nft-restore", &["--test"]);
    validate_all(
        "iptables",
        "firewall",
        "iptables-legacy-restore",
        &["--test"],
    );
}

/// The ports each firewall opens, as `(chain-ish, iface-ish, proto, port)`
/// words: the same set for iptables and nftables (the policy
/// `engine/safety.rs` models is the one both implement).
fn opened(content: &str) -> Vec<String> {
    let mut v: Vec<String> = content
        .lines()
        .filter(|l| l.contains("dport") && (l.contains("ACCEPT") || l.contains("accept")))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let port = w
                .iter()
                .position(|x| *x == "--dport" || *x == "dport")
                .map(|i| w[i + 1])
                .unwrap();
            let proto = if l.contains("udp") { "udp" } else { "tcp" };
            let iface = w
                .iter()
                .position(|x| *x == "-i" || *x == "iifname")
                .map(|i| w[i + 1].trim_matches('"'))
                .unwrap_or("any");
            format!("{iface} {proto} {port}")
        })
        .collect();
    v.sort();
    v
}

#[test]
fn both_backends_open_the_same_ports() {
    for inv in INVENTORIES {
        let ipt = net_files(&cluster(inv, "iptables"), &facts_for("ifupdown"));
        let nft = net_files(&cluster(inv, "nftables"), &facts_for("ifupdown"));
        for node in ["head", "worker"] {
            let pick = |files: &[(String, RenderedFile)], step: &str| {
                files
                    .iter()
                    .find(|(_, f)| f.step == format!("{node}-{step}"))
                    .map(|(_, f)| f.content.clone())
                    .unwrap()
            };
            let a = opened(&pick(&ipt, "firewall"));
            let b = opened(&pick(&nft, "nftables"));
            assert_eq!(a, b, "{inv} {node}");
        }
        assert!(!opened(
            &ipt.iter()
                .find(|(_, f)| f.step == "head-firewall")
                .unwrap()
                .1
                .content
        )
        .is_empty());
    }
}

/// Debian's installer stanza for the LAN port: kept on a DHCP worker (it
/// already does the job), reported on the head (static wanted).
#[test]
fn another_files_claim_on_the_lan_port_is_kept_or_reported() {
    let c = cluster("lab", "auto");
    let t = Templates::load(None).unwrap();
    let f = facts::parse(include_str!("../../src/facts/fixtures/debian12.probe")).unwrap();
    let err = desired(&c, &t, "head", &f).unwrap_err().to_string();
    assert!(
        err.contains("eth1 on head is already configured by /etc/network/interfaces (DHCP)"),
        "{err}"
    );
    let d = desired(&c, &t, "w1", &f).unwrap();
    assert!(d.files.iter().all(|x| x.step != "worker-interface"));
    assert_eq!(
        d.notes,
        ["eth0 already asks DHCP in /etc/network/interfaces (ifupdown): kept, clusterctl writes no interface file"]
    );
    // A pinned stack with nothing recognised works; nothing recognised and no pin is an error.
    let bare = facts::parse("@@os debian 12\n@@init systemd\n@@done\n").unwrap();
    let err = desired(&c, &t, "w1", &bare).unwrap_err().to_string();
    assert!(err.contains("no network stack recognised"), "{err}");
    let text = std::fs::read_to_string(root().join("inventories/lab.yaml"))
        .unwrap()
        .replace("  - name: w1\n", "  - name: w1\n    network: networkd\n");
    let pinned = Cluster::from_str(&text, Path::new("lab.yaml")).unwrap();
    let d = desired(&pinned, &t, "w1", &bare).unwrap();
    assert!(d
        .files
        .iter()
        .any(|x| x.path == "/etc/systemd/network/10-clusterctl-lan.network"));
}

/// A pin the inventory cannot mean is refused with its line and column.
#[test]
fn a_bad_pin_is_refused_with_its_position() {
    let text = std::fs::read_to_string(root().join("inventories/lab.yaml"))
        .unwrap()
        .replace("  lan: trust\n", "  lan: trust\n  backend: ipfw\n");
    let err = Cluster::from_str(&text, Path::new("lab.yaml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("lab.yaml:"), "{err}");
    assert!(err.contains("ipfw"), "{err}");
    assert!(
        err.contains("iptables") && err.contains("nftables"),
        "{err}"
    );
}

/// Each family's firewall file is the one its boot service loads, and
/// the handler enables that service where its package does not.
#[test]
fn each_family_gets_the_firewall_file_its_boot_loads() {
    let t = Templates::load(None).unwrap();
    let paths = |c: &Cluster, f: &Facts| -> Vec<&'static str> {
        desired(c, &t, "head", f)
            .unwrap()
            .files
            .iter()
            .filter(|x| x.step.starts_with("head-firewall") || x.step == "head-nftables")
            .map(|x| x.path)
            .collect()
    };
    let handler = |c: &Cluster, f: &Facts, step: &str| -> String {
        desired(c, &t, "head", f)
            .unwrap()
            .handlers
            .iter()
            .find(|h| h.step == step)
            .unwrap()
            .command
            .clone()
            .unwrap()
    };
    // Pins so that the fixtures' own LAN-port claims do not matter here.
    let pin = |text: String| {
        text.replace(
            "  lan_ip: 10.77.0.1\n",
            "  lan_ip: 10.77.0.1\n  network: networkd\n",
        )
    };
    let lab = |backend: &str| {
        let text = std::fs::read_to_string(root().join("inventories/lab.yaml")).unwrap();
        let mut text = pin(text);
        if backend != "auto" {
            text = text.replace(
                "  lan: trust\n",
                &format!("  lan: trust\n  backend: {backend}\n"),
            );
        }
        Cluster::from_str(&text, Path::new("lab.yaml")).unwrap()
    };
    let alpine = facts::parse(include_str!("../../src/facts/fixtures/alpine319.probe")).unwrap();
    assert_eq!(paths(&lab("auto"), &alpine), ["/etc/iptables/rules-save"]);
    let cmd = handler(&lab("auto"), &alpine, "head-firewall");
    assert!(
        cmd.ends_with("&& { rc-update add iptables default >/dev/null 2>&1 || true; }"),
        "{cmd}"
    );
    let mut rhel = facts::parse(include_str!("../../src/facts/fixtures/rhel9.probe")).unwrap();
    rhel.active.remove("firewalld");
    assert_eq!(paths(&lab("iptables"), &rhel), ["/etc/sysconfig/iptables"]);
    assert_eq!(paths(&lab("auto"), &rhel), ["/etc/sysconfig/nftables.conf"]);
    let cmd = handler(&lab("auto"), &rhel, "head-nftables");
    assert_eq!(
        cmd,
        "nft_load /etc/sysconfig/nftables.conf && systemctl enable --quiet nftables"
    );
    let debian = facts_for("ifupdown");
    assert_eq!(paths(&lab("auto"), &debian), ["/etc/iptables/rules.v4"]);
    assert_eq!(
        handler(&lab("auto"), &debian, "head-firewall"),
        "iptables-restore /etc/iptables/rules.v4 && nft_drop_own"
    );
}
