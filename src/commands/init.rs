//! `clusterctl init`: write a commented inventory from flags, or from a wizard
//! when a terminal is attached and required flags are missing. Never prompts
//! without a terminal (or with --yes): it names the missing flags instead.

use std::io::IsTerminal;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

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
    output_path_is_plain(&args.output)?;
    if args.output.exists() && !args.force {
        return Err(Error::Exists {
            path: args.output.clone(),
        });
    }
    let interactive =
        !args.yes && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let required = [
        ("--head", args.head.is_none()),
        ("--wan-iface", args.wan_iface.is_none()),
        ("--lan-iface", args.lan_iface.is_none()),
        ("--lan", args.lan.is_none()),
    ];
    let missing: Vec<&str> = required
        .iter()
        .filter(|(_, m)| *m)
        .map(|(f, _)| *f)
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
    let answers = collect(&args)?;
    let text = inventory_text(&answers);
    // Safety net: what we write must pass `check`.
    Cluster::from_str(&text, &args.output)?;
    super::write_atomic(&args.output, &text, args.force)?;
    let shown = args.output.display();
    println!("wrote {shown}");
    println!("next: clusterctl check -i {shown} && clusterctl apply --dry-run -i {shown}");
    Ok(0)
}

/// The `-o` path is echoed into the written inventory (in a comment) and
/// in messages: refuse one that is not UTF-8 or holds a control character
/// (a newline there would start new YAML lines).
fn output_path_is_plain(path: &std::path::Path) -> Result<()> {
    let help = Some("pick a file name without control characters, like cluster.yaml");
    let Some(text) = path.to_str() else {
        return Err(Error::usage(
            format!(
                "-o `{}` is not UTF-8",
                values::shown(&path.to_string_lossy())
            ),
            help,
        ));
    };
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(Error::usage(
            format!(
                "-o `{}` contains the control character {}",
                values::shown(text),
                values::shown_char(c)
            ),
            help,
        ));
    }
    Ok(())
}

fn ask(
    prompt: &str,
    default: Option<String>,
    check: fn(&str) -> std::result::Result<(), String>,
) -> Result<String> {
    let mut input = dialoguer::Input::<String>::new().with_prompt(prompt);
    if let Some(d) = default {
        input = input.default(d);
    }
    input
        .validate_with(move |s: &String| check(s.trim()))
        .interact_text()
        .map(|s| s.trim().to_string())
        .map_err(|e| {
            Error::usage(
                format!("wizard stopped: {e}"),
                Some("pass the values as flags instead (see --help)"),
            )
        })
}

fn wizard(args: &mut InitArgs) -> Result<()> {
    eprintln!("clusterctl init: a few questions about your cluster (Ctrl-C to stop; nothing is written until the end).");
    if args.head.is_none() {
        args.head = Some(ask(
            "How do you reach the head over SSH? [USER@]HOST[:PORT]",
            None,
            |s| values::parse_ssh_target(s).map(|_| ()),
        )?);
    }
    if args.wan_iface.is_none() {
        args.wan_iface = Some(ask(
            "Head interface to the outside network (WAN)",
            Some("eth0".into()),
            values::check_iface,
        )?);
    }
    if args.lan_iface.is_none() {
        args.lan_iface = Some(ask(
            "Head interface to the cluster switch (LAN)",
            Some("eth1".into()),
            values::check_iface,
        )?);
    }
    if args.lan.is_none() {
        args.lan = Some(ask(
            "Cluster LAN (CIDR)",
            Some("10.0.0.0/24".into()),
            |s| {
                validate::parse_lan(s)
                    .map(|_| ())
                    .map_err(|p| format!("`{s}` {}; {}", p.what(), p.help()))
            },
        )?);
    }
    if args.workers.is_none() {
        let w = ask(
            "Workers (a host list like node[01-04], or empty)",
            Some(String::new()),
            |s| {
                if s.is_empty() {
                    Ok(())
                } else {
                    hostlist::expand(s).map(|_| ()).map_err(|e| e.0)
                }
            },
        )?;
        args.workers = (!w.is_empty()).then_some(w);
    }
    Ok(())
}

fn collect(args: &InitArgs) -> Result<Answers> {
    let bad = |flag: &str, e: String| {
        Error::usage(format!("{flag}: {e}"), Some("see clusterctl init --help"))
    };
    let req = |v: &Option<String>, flag: &str| v.clone().ok_or_else(|| bad(flag, "missing".into()));
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
        Some(s) => s.parse().map_err(|_| {
            let shown = values::shown(s);
            bad("--head-ip", format!("`{shown}` is not an IPv4 address"))
        })?,
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
        path: args.output.display().to_string(),
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
