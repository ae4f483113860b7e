//! `clusterctl add-node`: add a worker to the inventory, keeping every comment
//! and all formatting, validating the result before writing it atomically,
//! then apply to every node (each one lists the workers).

use std::path::Path;

use crate::cli::{
    AddNodeArgs, ApplyArgs, ConfirmArgs, InventoryArg, NodeApplyArgs, OutputFormat, RemoteArgs,
    TemplatesArg,
};
use crate::cluster::Cluster;
use crate::error::{Error, Result};
use crate::values;
use crate::yaml_edit;

pub fn run(args: AddNodeArgs, verbose: u8) -> Result<i32> {
    let path = &args.inventory.path;
    let text = crate::validate::read_bounded(path)?;
    // The current inventory must be valid: we only ever turn a good file into a good file.
    let cluster = Cluster::from_str(&text, path)?;
    let (new_text, new_cluster, names) = match (&args.from_leases, &args.name) {
        (Some(list), _) => {
            let names = new_names(&cluster, list, path)?;
            let found = super::from_leases::wait_for(&args, &cluster, names.len())?;
            let Some(found) = found else {
                eprintln!("interrupted: {} was not changed", path.display());
                return Ok(super::apply::EXIT_INTERRUPTED);
            };
            // The file may have been edited while --watch waited: never
            // write over that.
            if crate::validate::read_bounded(path)? != text {
                return Err(Error::usage(
                    format!(
                        "{} changed while add-node waited; nothing was written",
                        path.display()
                    ),
                    Some("run add-node --from-leases again"),
                ));
            }
            let mut text = text.clone();
            let mut cluster = cluster;
            for (name, d) in names.iter().zip(&found) {
                let mut f = fields(&args, name)?;
                f.insert(1, ("mac", yaml_edit::quote(&d.mac)));
                (text, cluster) = append(&text, path, name, f)?;
            }
            (text, cluster, names)
        }
        (None, Some(name)) => {
            if cluster.node(name).is_some() {
                return Err(Error::usage(
                    format!("node `{name}` is already in {}", path.display()),
                    Some("pick another name"),
                ));
            }
            let f = fields(&args, name)?;
            let (text, cluster) = append(&text, path, name, f)?;
            (text, cluster, vec![name.clone()])
        }
        (None, None) => return Err(Error::usage("add-node needs a NAME or --from-leases", None)),
    };
    super::write_atomic(path, &new_text, true)?;
    for name in &names {
        let w = new_cluster
            .worker(name)
            .ok_or_else(|| Error::usage("internal error: the new node vanished", None))?;
        println!(
            "added {} ({}{}) to {}",
            w.name,
            w.ip,
            w.mac
                .as_deref()
                .map(|m| format!(", {m}"))
                .unwrap_or_default(),
            path.display()
        );
    }
    if args.no_apply {
        println!("next: clusterctl apply -i {}", path.display());
        return Ok(0);
    }
    apply_everywhere(&args, verbose)
}

/// The names of `--from-leases`: a host list of valid names, none of them
/// in the inventory already, none twice.
fn new_names(cluster: &Cluster, list: &str, path: &Path) -> Result<Vec<String>> {
    let names = crate::hostlist::expand(list).map_err(|e| {
        Error::usage(
            format!("--from-leases: {e}"),
            Some("a host list like 'node[05-08]' or node05,node06"),
        )
    })?;
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(Error::usage(
                format!("--from-leases names `{name}` twice"),
                Some("each new machine needs its own name"),
            ));
        }
        if cluster.node(name).is_some() {
            return Err(Error::usage(
                format!("node `{name}` is already in {}", path.display()),
                Some("name only the new machines"),
            ));
        }
    }
    Ok(names)
}

/// The inventory with `name`'s entry appended, its address pinned (when
/// not given, the one validation assigned, so later edits cannot move it).
fn append(
    text: &str,
    path: &Path,
    name: &str,
    mut fields: Vec<(&'static str, String)>,
) -> Result<(String, Cluster)> {
    let (new_text, new_cluster) = edited(text, path, name, &fields)?;
    if fields.iter().any(|(k, _)| *k == "ip") {
        return Ok((new_text, new_cluster));
    }
    let ip = new_cluster
        .worker(name)
        .map(|w| w.ip.to_string())
        .unwrap_or_default();
    let at = fields
        .iter()
        .position(|(k, _)| *k == "mac")
        .map_or(1, |i| i + 1);
    fields.insert(at, ("ip", ip));
    edited(text, path, name, &fields)
}

/// The new entry's fields, each value checked and quoted for YAML.
fn fields(args: &AddNodeArgs, name: &str) -> Result<Vec<(&'static str, String)>> {
    let bad = |what: String, help: &str| Error::usage(what, Some(help));
    values::check_hostname(name).map_err(|e| {
        bad(
            format!("invalid node name `{}`: it {e}", values::shown(name)),
            "host names are RFC 1123 labels like `node05`",
        )
    })?;
    let mut fields: Vec<(&str, String)> = vec![("name", yaml_edit::quote(name))];
    if let Some(mac) = &args.mac {
        let mac = values::normalize_mac(mac).map_err(|e| {
            bad(
                format!("--mac `{}` {e}", values::shown(mac)),
                "copy it from `ip link` on the node",
            )
        })?;
        fields.push(("mac", yaml_edit::quote(&mac)));
    }
    if let Some(ip) = &args.ip {
        let ip: std::net::Ipv4Addr = ip.parse().map_err(|_| {
            bad(
                format!("--ip `{}` is not an IPv4 address", values::shown(ip)),
                "like 10.0.0.15",
            )
        })?;
        fields.push(("ip", ip.to_string()));
    }
    if let Some(slots) = args.slots {
        fields.push(("slots", slots.to_string()));
    }
    if let Some(iface) = &args.iface {
        values::check_iface(iface).map_err(|e| {
            bad(
                format!("--iface `{}`: {e}", values::shown(iface)),
                "the worker's LAN port as `ip link` names it, like enp1s0",
            )
        })?;
        fields.push(("iface", yaml_edit::quote(iface)));
    }
    if let Some(ssh) = &args.ssh {
        values::parse_ssh_target(ssh).map_err(|e| {
            bad(
                format!("--ssh `{}`: {e}", values::shown(ssh)),
                "write it as [USER@]HOST[:PORT]",
            )
        })?;
        fields.push(("ssh", yaml_edit::quote(ssh)));
    }
    Ok(fields)
}

/// The inventory with the entry appended, and the cluster it validates to;
/// an entry that would make it invalid is refused with every reason.
fn edited(
    text: &str,
    path: &Path,
    name: &str,
    fields: &[(&str, String)],
) -> Result<(String, Cluster)> {
    let new_text = yaml_edit::append_worker(text, fields)
        .map_err(|e| Error::usage(format!("cannot edit {}: {e}", path.display()), None))?;
    match Cluster::from_str(&new_text, path) {
        Ok(cluster) => Ok((new_text, cluster)),
        Err(Error::Inventory { diagnostics, .. }) => {
            let mut msg =
                format!("adding {name} would make the inventory invalid; nothing was written");
            for d in &diagnostics {
                msg.push_str(&format!(
                    "\n  {}: {}",
                    d.node.as_deref().unwrap_or("inventory"),
                    d.message
                ));
                if let Some(h) = &d.help {
                    msg.push_str(&format!(" ({h})"));
                }
            }
            Err(Error::usage(
                msg,
                Some("fix the values you passed, or edit the inventory first"),
            ))
        }
        Err(e) => Err(e),
    }
}

/// Every node's hosts block and hostfiles list the workers, and the head's
/// dnsmasq reserves the new lease: apply to all of them.
fn apply_everywhere(args: &AddNodeArgs, verbose: u8) -> Result<i32> {
    println!("applying to every node (each one lists the workers)");
    apply_all(
        &args.inventory,
        &args.templates,
        args.apply,
        args.wait,
        args.confirm,
        verbose,
    )
}

/// Apply the edited inventory to every node it lists.
pub(super) fn apply_all(
    inventory: &InventoryArg,
    templates: &TemplatesArg,
    opts: NodeApplyArgs,
    wait: u64,
    confirm: ConfirmArgs,
    verbose: u8,
) -> Result<i32> {
    let apply = ApplyArgs {
        remote: RemoteArgs {
            inventory: inventory.clone(),
            templates: templates.clone(),
            nodes: None,
            forks: opts.forks,
            accept_new_host_keys: opts.accept_new_host_keys,
            output: OutputFormat::Text,
            transport: opts.transport,
            timeout: crate::cli::DEFAULT_TIMEOUT,
        },
        dry_run: false,
        wait,
        confirm,
        skip_packages: false,
        yes: opts.yes,
        quiet: false,
    };
    super::apply::run(&apply, verbose)
}
