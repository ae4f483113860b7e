//! `clusterctl init`: write a commented inventory from flags, or from a wizard
//! when a terminal is attached and required flags are missing. Never prompts
//! without a terminal (or with --yes): it names the missing flags instead.

use std::io::IsTerminal;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;

use super::{init_probe, prompt};
use crate::cli::InitArgs;
use crate::cluster::Cluster;
use crate::error::{Error, Result};
use crate::{hostlist, validate, values};

/// Everything the inventory needs, each value validated.
struct Answers {
    name: String,
    domain: String,
    head: String,
    wan_iface: String,
    lan_iface: String,
    lan: Ipv4Net,
    head_ip: Ipv4Addr,
    dhcp: (Ipv4Addr, Ipv4Addr),
    workers: Option<String>,
    path: String,
}

pub fn run(mut args: InitArgs) -> Result<i32> {
    let (path, flag) = match (&args.inventory, &args.output) {
        (Some(p), _) => (p.clone(), "-i"),
        (None, Some(p)) => {
            eprintln!("note: init -o/--output FILE is deprecated; use -i/--inventory FILE (as every other command does)");
            (p.clone(), "-o")
        }
        (None, None) => (PathBuf::from("cluster.yaml"), "-i"),
    };
    output_path_is_plain(&path, flag)?;
    if path.exists() && !args.force {
        return Err(Error::Exists { path });
    }
    let interactive =
        !args.yes && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|f| field(&mut args, f).is_none())
        .collect();
    if !missing.is_empty() {
        if !interactive {
            return Err(Error::usage(
                format!("missing {} (no terminal to ask on)", missing.join(", ")),
                Some("example: clusterctl init --head root@192.168.1.50 --wan-iface eth0 --lan-iface eth1 --lan 10.0.0.0/24 --yes"),
            ));
        }
        wizard(&mut args)?;
    }
    let answers = loop {
        match collect(&args, &path) {
            Ok(a) => break a,
            // On a terminal a bad answer (or flag) is asked again; the
            // others are kept.
            Err((flag, e)) if interactive => {
                crate::error::print_error(&e);
                *field(&mut args, flag) = None;
                ask_field(&mut args, flag, None)?;
            }
            Err((_, e)) => return Err(e),
        }
    };
    let text = inventory_text(&answers);
    // Safety net: what we write must pass `check`.
    Cluster::from_str(&text, &path)?;
    super::write_atomic(&path, &text, args.force)?;
    let shown = path.display();
    println!("wrote {shown}");
    println!("next: clusterctl check -i {shown} && clusterctl apply --dry-run -i {shown}");
    Ok(0)
}

/// The flags the wizard asks for when missing (workers may stay empty).
const REQUIRED: [&str; 4] = ["--head", "--wan-iface", "--lan-iface", "--lan"];

/// The answer a flag holds.
fn field<'a>(args: &'a mut InitArgs, flag: &str) -> &'a mut Option<String> {
    match flag {
        "--head" => &mut args.head,
        "--wan-iface" => &mut args.wan_iface,
        "--lan-iface" => &mut args.lan_iface,
        "--lan" => &mut args.lan,
        "--head-ip" => &mut args.head_ip,
        "--dhcp-range" => &mut args.dhcp_range,
        "--domain" => &mut args.domain,
        "--name" => &mut args.name,
        _ => &mut args.workers,
    }
}

/// The `-i` path is echoed into the written inventory (in a comment) and
/// in messages: refuse one that is not UTF-8 or holds a control character
/// (a newline there would start new YAML lines).
fn output_path_is_plain(path: &std::path::Path, flag: &str) -> Result<()> {
    let help = Some("pick a file name without control characters, like cluster.yaml");
    let Some(text) = path.to_str() else {
        return Err(Error::usage(
            format!(
                "{flag} `{}` is not UTF-8",
                values::shown(&path.to_string_lossy())
            ),
            help,
        ));
    };
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(Error::usage(
            format!(
                "{flag} `{}` contains the control character {}",
                values::shown(text),
                values::shown_char(c)
            ),
            help,
        ));
    }
    Ok(())
}

fn wizard(args: &mut InitArgs) -> Result<()> {
    eprintln!("clusterctl init: a few questions about your cluster (Ctrl-D or Ctrl-C to stop; nothing is written until the end).");
    let mut facts = None;
    for flag in REQUIRED.iter().chain(["--workers"].iter()) {
        if *flag == "--wan-iface" && (args.wan_iface.is_none() || args.lan_iface.is_none()) {
            facts = look_at_head(args.head.as_deref(), args.ssh_config.as_deref());
        }
        if field(args, flag).is_none() {
            ask_field(args, flag, facts.as_ref())?;
        }
    }
    Ok(())
}

/// Probe the head (read-only, one SSH command) to propose its interfaces.
fn look_at_head(head: Option<&str>, config: Option<&Path>) -> Option<init_probe::HeadFacts> {
    let target = values::parse_ssh_target(head?).ok()?;
    eprintln!("Looking at the head ({target}) over SSH...");
    match init_probe::probe(&target, config) {
        Ok(f) if !f.ifaces.is_empty() => {
            eprint!("{}", f.describe());
            Some(f)
        }
        Ok(_) => None,
        Err(why) => {
            eprintln!("could not look at the head ({why}); answer by hand");
            None
        }
    }
}

/// One question: its prompt, default and check.
type Question<'a> = (&'static str, Option<String>, prompt::Check<'a>);

/// Ask for one answer, checked on its own and against the answers given
/// so far (the LAN interface is not the WAN one, the head's address and
/// the pool lie in the LAN).
fn ask_field(args: &mut InitArgs, flag: &str, facts: Option<&init_probe::HeadFacts>) -> Result<()> {
    let (prompt, default, check) = match flag {
        "--wan-iface" | "--lan-iface" => iface_question(args, flag, facts),
        _ => question(args, flag),
    };
    let answer = prompt::ask(prompt, default.as_deref(), check)?;
    *field(args, flag) = (!answer.is_empty()).then_some(answer);
    Ok(())
}

/// The head's WAN or LAN interface: proposed from the probe when there was
/// one, an interface the head has, not the other one.
fn iface_question(
    args: &InitArgs,
    flag: &str,
    facts: Option<&init_probe::HeadFacts>,
) -> Question<'static> {
    let names: Vec<String> = facts.map_or(Vec::new(), |f| {
        f.ifaces.iter().map(|i| i.name.clone()).collect()
    });
    let (prompt, other, what, proposed) = if flag == "--wan-iface" {
        let proposed = facts.and_then(|f| f.wan()).unwrap_or("eth0").to_string();
        let prompt = "Head interface to the outside network (WAN)";
        (prompt, args.lan_iface.clone(), "the LAN", proposed)
    } else {
        let wan = args.wan_iface.as_deref();
        let fallback = if wan == Some("eth1") { "eth0" } else { "eth1" };
        let proposed = facts.and_then(|f| f.lan()).unwrap_or(fallback).to_string();
        let prompt = "Head interface to the cluster switch (LAN)";
        (prompt, args.wan_iface.clone(), "the WAN", proposed)
    };
    let check: prompt::Check = Box::new(move |s| {
        values::check_iface(s)?;
        on_head(s, &names)?;
        same_iface(s, other.as_deref(), what)
    });
    (prompt, Some(proposed), check)
}

/// Every other answer, with its default and check.
fn question(args: &InitArgs, flag: &str) -> Question<'static> {
    let lan = args
        .lan
        .as_deref()
        .and_then(|l| validate::parse_lan(l).ok());
    let problem =
        |s: &str, what: String, help: &str| format!("`{}` {what}; {help}", values::shown(s));
    match flag {
        "--head" => (
            "How do you reach the head over SSH? [USER@]HOST[:PORT]",
            None,
            Box::new(|s| values::parse_ssh_target(s).map(|_| ())),
        ),
        "--lan" => (
            "Cluster LAN (CIDR)",
            Some("10.0.0.0/24".into()),
            Box::new(move |s| {
                validate::parse_lan(s)
                    .map(|_| ())
                    .map_err(|p| problem(s, p.what().to_string(), &p.help()))
            }),
        ),
        "--head-ip" => (
            "The head's LAN address",
            lan.map(|l| validate::host_range(l).0.to_string()),
            Box::new(move |s| in_lan(s, lan)),
        ),
        "--dhcp-range" => (
            "Dynamic DHCP pool (A-B)",
            lan.map(|l| {
                let (a, b) = validate::default_pool(l);
                format!("{a}-{b}")
            }),
            Box::new(move |s| {
                validate::parse_dhcp_range(s, lan)
                    .map(|_| ())
                    .map_err(|p| problem(s, p.what(), &p.help()))
            }),
        ),
        "--domain" => (
            "DNS domain of the cluster",
            Some("cluster.lan".into()),
            Box::new(values::check_domain),
        ),
        "--name" => (
            "Cluster name",
            Some("cluster".into()),
            Box::new(values::check_hostname),
        ),
        _ => (
            "Workers (a host list like node[01-04], or empty)",
            Some(String::new()),
            Box::new(|s| match s {
                "" => Ok(()),
                s => check_workers(s),
            }),
        ),
    }
}

/// When the head was probed: the interface must be one of its own.
fn on_head(s: &str, names: &[String]) -> std::result::Result<(), String> {
    if names.is_empty() || names.iter().any(|n| n == s) {
        Ok(())
    } else {
        Err(format!(
            "the head has no interface `{}` (it has {})",
            values::shown(s),
            names.join(", ")
        ))
    }
}

fn same_iface(s: &str, other: Option<&str>, what: &str) -> std::result::Result<(), String> {
    match other {
        Some(o) if o == s => Err(format!(
            "`{}` is already the head's interface to {what}; the head needs two interfaces",
            values::shown(s)
        )),
        _ => Ok(()),
    }
}

fn in_lan(s: &str, lan: Option<Ipv4Net>) -> std::result::Result<(), String> {
    let ip: Ipv4Addr = s
        .parse()
        .map_err(|_| format!("`{}` is not an IPv4 address", values::shown(s)))?;
    match lan {
        Some(l) if !(validate::host_range(l).0..=validate::host_range(l).1).contains(&ip) => {
            Err(format!("{ip} is not a host address of the LAN {l}"))
        }
        _ => Ok(()),
    }
}

fn check_workers(s: &str) -> std::result::Result<(), String> {
    let names = hostlist::expand(s).map_err(|e| e.0)?;
    for n in &names {
        values::check_hostname(n).map_err(|e| format!("`{}` {e}", values::shown(n)))?;
    }
    Ok(())
}

/// Every answer checked; a bad one comes back with its flag (so the
/// wizard can ask for it again).
fn collect(args: &InitArgs, path: &Path) -> std::result::Result<Answers, (&'static str, Error)> {
    let bad = |flag: &'static str, e: String| {
        (
            flag,
            Error::usage(format!("{flag}: {e}"), Some("see clusterctl init --help")),
        )
    };
    let req = |v: &Option<String>, flag: &'static str| {
        v.clone().ok_or_else(|| bad(flag, "missing".into()))
    };
    let head = req(&args.head, "--head")?;
    values::parse_ssh_target(&head).map_err(|e| bad("--head", e))?;
    let wan_iface = req(&args.wan_iface, "--wan-iface")?;
    values::check_iface(&wan_iface).map_err(|e| {
        bad(
            "--wan-iface",
            format!("`{}` {e}", values::shown(&wan_iface)),
        )
    })?;
    let lan_iface = req(&args.lan_iface, "--lan-iface")?;
    values::check_iface(&lan_iface).map_err(|e| {
        bad(
            "--lan-iface",
            format!("`{}` {e}", values::shown(&lan_iface)),
        )
    })?;
    if lan_iface == wan_iface {
        return Err(bad(
            "--lan-iface",
            format!("`{lan_iface}` is also --wan-iface; the head needs two interfaces"),
        ));
    }
    let lan_text = req(&args.lan, "--lan")?;
    let lan = validate::parse_lan(&lan_text).map_err(|p| {
        let shown = values::shown(&lan_text);
        bad("--lan", format!("`{shown}` {}; {}", p.what(), p.help()))
    })?;
    let head_ip = match &args.head_ip {
        Some(s) => {
            in_lan(s, Some(lan)).map_err(|e| bad("--head-ip", e))?;
            s.parse()
                .map_err(|_| bad("--head-ip", "not an IPv4 address".into()))?
        }
        None => validate::host_range(lan).0,
    };
    let dhcp = match &args.dhcp_range {
        Some(s) => validate::parse_dhcp_range(s, Some(lan)).map_err(|p| {
            let shown = values::shown(s);
            bad(
                "--dhcp-range",
                format!("`{shown}` {}; {}", p.what(), p.help()),
            )
        })?,
        None => validate::default_pool(lan),
    };
    let domain = args.domain.clone().unwrap_or_else(|| "cluster.lan".into());
    values::check_domain(&domain)
        .map_err(|e| bad("--domain", format!("`{}` {e}", values::shown(&domain))))?;
    let name = args.name.clone().unwrap_or_else(|| "cluster".into());
    values::check_hostname(&name)
        .map_err(|e| bad("--name", format!("`{}` {e}", values::shown(&name))))?;
    if let Some(w) = &args.workers {
        let names = hostlist::expand(w).map_err(|e| bad("--workers", e.0))?;
        for n in &names {
            values::check_hostname(n)
                .map_err(|e| bad("--workers", format!("`{}` {e}", values::shown(n))))?;
        }
        // Every worker needs an address outside the DHCP pool, as the head does.
        let (lo, hi) = validate::host_range(lan);
        let pool = u32::from(dhcp.1) - u32::from(dhcp.0) + 1;
        let room = (u32::from(hi) - u32::from(lo) + 1 - pool) as usize;
        if names.len() + 1 > room {
            let nodes = names.len() + 1;
            let fix = match (&args.dhcp_range, validate::prefix_for(nodes, None)) {
                (None, Some(p)) => format!("pass --lan with a /{p} (or larger) network"),
                (Some(_), Some(p)) => format!(
                    "pass --lan with a /{} (or larger) network, or a smaller --dhcp-range",
                    validate::prefix_for(nodes, Some(pool)).unwrap_or(p)
                ),
                _ => "name fewer workers".into(),
            };
            return Err(bad(
                "--workers",
                format!(
                    "`{}` names {} workers, but --lan {lan} has room for {} nodes beside the DHCP range {}-{}; {fix}",
                    values::shown(w),
                    names.len(),
                    room,
                    dhcp.0,
                    dhcp.1
                ),
            ));
        }
    }
    Ok(Answers {
        name,
        domain,
        head,
        wan_iface,
        lan_iface,
        lan,
        head_ip,
        dhcp,
        workers: args.workers.clone(),
        path: path.display().to_string(),
    })
}

/// Every value written into the inventory is either a number/address we
/// formatted or goes through here: plain when unambiguous, else a YAML
/// double-quoted scalar with control characters escaped, so no value can
/// add lines or change type.
fn q(value: &str) -> String {
    crate::yaml_edit::scalar(value)
}

fn inventory_text(a: &Answers) -> String {
    let become_line = if a.head.starts_with("root@") || !a.head.contains('@') {
        String::new()
    } else {
        "  become: sudo                  # the SSH user is not root: commands run with 'sudo -n'\n"
            .into()
    };
    let workers = match &a.workers {
        Some(list) => format!(
            "workers:\n  # A range: names expand in order; addresses are assigned after the head's.\n  # Add `macs: [..]` (one per node, in order) to pin each node's DHCP lease to its NIC,\n  # or use `clusterctl add-node NAME --mac MAC` for one node at a time.\n  - names: {}\n",
            crate::yaml_edit::quote(list)
        ),
        None => "workers: []                     # add with: clusterctl add-node NAME --mac MAC --no-apply\n".into(),
    };
    format!(
        "# clusterctl inventory, written by `clusterctl init`.\n\
# Check it:  clusterctl check -i {path}\n\
# Preview:   clusterctl render -i {path} --node {head_name}\n\
\n\
name: {name}\n\
# DNS domain served by the head's dnsmasq\n\
domain: {domain}\n\
\n\
lan:\n\
\x20 cidr: {lan}\n\
\x20 dhcp_range: {d0}-{d1}   # dynamic pool for machines not listed below\n\
\x20 addressing: dhcp              # dhcp: reserved lease per worker | static: fixed config on each worker\n\
\x20 upstream_dns: []              # where dnsmasq forwards other names; empty: the head's own resolvers\n\
\n\
head:\n\
\x20 name: {head_name}\n\
\x20 ssh: {head_q}\n\
{become_line}\
\x20 wan_iface: {wan}\n\
\x20 lan_iface: {lanif}\n\
\x20 lan_ip: {head_ip}\n\
\n\
{workers}\
\n\
nfs:\n\
\x20 enabled: true\n\
\x20 exports:\n\
\x20   - path: /home\n\
\x20     mount: /home\n\
\x20     options: rw,sync,no_subtree_check\n\
\n\
firewall:\n\
\x20 wan_tcp_ports: [22]           # open on the head's WAN side (22 is always open)\n\
\x20 lan: trust                    # trust: accept everything from the LAN | ssh-only\n\
\n\
mpi:\n\
\x20 slots: 1                      # default slots per worker\n\
\x20 hostfiles: [openmpi, mpich]\n",
        head_name = "head",
        path = crate::transport::shell_quote(&a.path),
        name = q(&a.name),
        domain = q(&a.domain),
        lan = a.lan,
        d0 = a.dhcp.0,
        d1 = a.dhcp.1,
        head_q = q(&a.head),
        wan = q(&a.wan_iface),
        lanif = q(&a.lan_iface),
        head_ip = a.head_ip,
    )
}
