//! `clusterctl remove-node NAME`: the reverse of add-node. The worker's
//! entry leaves the inventory (every other byte kept; the result validated
//! before an atomic write), then apply runs on every remaining node, so its
//! names (hosts blocks, DNS), its reserved lease, its place in the
//! hostfiles and its host key (known_hosts) disappear there; finally the
//! head's dnsmasq forgets the lease it handed out. The removed machine
//! itself is not touched (it may be gone).

use crate::cli::{NodeApplyArgs, RemoteArgs, RemoveNodeArgs};
use crate::cluster::Cluster;
use crate::engine::Lease;
use crate::error::{Error, Result, EXIT_OK};
use crate::yaml_edit;

pub fn run(args: RemoveNodeArgs, verbose: u8) -> Result<i32> {
    let path = &args.inventory.path;
    let text = crate::validate::read_bounded(path)?;
    let cluster = Cluster::from_str(&text, path)?;
    let Some(w) = cluster.worker(&args.name) else {
        let help = if cluster.head.name.as_str() == args.name {
            "the head cannot be removed; workers: ".to_string()
        } else {
            "workers: ".to_string()
        };
        let names: Vec<&str> = cluster.workers.iter().map(|w| w.name.as_str()).collect();
        return Err(Error::usage(
            format!(
                "no worker `{}` in {}",
                crate::values::shown(&args.name),
                path.display()
            ),
            Some(&format!("{help}{}", crate::hostlist::fold(&names))),
        ));
    };
    let (ip, mac) = (w.ip, w.mac.as_deref().map(str::to_string));
    let new_text = yaml_edit::remove_worker(&text, &args.name)
        .map_err(|e| Error::usage(format!("cannot edit {}: {e}", path.display()), None))?;
    let new_cluster = Cluster::from_str(&new_text, path).map_err(|e| {
        Error::usage(
            format!(
                "removing {} would make the inventory invalid; nothing was written: {e}",
                args.name
            ),
            Some("edit the inventory by hand"),
        )
    })?;
    if new_cluster.node(&args.name).is_some() {
        return Err(Error::usage(
            format!(
                "{} is still in the inventory after the edit; nothing was written",
                args.name
            ),
            Some("it comes from another entry too: edit the inventory by hand"),
        ));
    }
    super::write_atomic(path, &new_text, true)?;
    println!("removed {} ({ip}) from {}", args.name, path.display());
    if args.no_apply {
        println!("next: clusterctl apply -i {}", path.display());
        return Ok(EXIT_OK);
    }
    println!("applying to every remaining node (each one lists the workers)");
    let code = super::add_node::apply_all(
        &args.inventory,
        &args.templates,
        args.apply,
        30,
        args.confirm,
        verbose,
    )?;
    if code != EXIT_OK {
        return Ok(code);
    }
    drop_lease_on_head(&args, args.apply, &ip.to_string(), mac.as_deref())?;
    Ok(code)
}

/// Connect to the head and have `engine::forget_lease` drop the removed
/// worker's lease; say how it went.
fn drop_lease_on_head(
    args: &RemoveNodeArgs,
    opts: NodeApplyArgs,
    ip: &str,
    mac: Option<&str>,
) -> Result<()> {
    let remote = RemoteArgs {
        inventory: args.inventory.clone(),
        templates: args.templates.clone(),
        nodes: None,
        forks: opts.forks,
        accept_new_host_keys: opts.accept_new_host_keys,
        output: crate::cli::OutputFormat::Text,
        transport: opts.transport,
        timeout: crate::cli::DEFAULT_TIMEOUT,
    };
    let p = super::remote::prepare(&remote)?;
    let head = p.cluster.head.name.to_string();
    let t = p.connector.transport_for(&p.cluster, &head);
    match crate::engine::forget_lease(t.as_ref(), ip, mac) {
        Lease::Forgot => {
            println!("{head}: dnsmasq forgot the lease of {} ({ip})", args.name);
            Ok(())
        }
        Lease::NoneHeld => {
            println!("{head}: dnsmasq held no lease for {} ({ip})", args.name);
            Ok(())
        }
        Lease::Failed(stderr) => Err(Error::usage(
            format!(
                "{head}: cannot drop the lease of {} from dnsmasq: {stderr}",
                args.name,
            ),
            Some("it expires by itself (12h); or remove its line from /var/lib/misc/dnsmasq.leases with dnsmasq stopped"),
        )),
        Lease::Unreachable(e) => Err(Error::usage(
            format!("{head}: cannot drop the lease of {}: {e}", args.name),
            Some("it expires by itself (12h)"),
        )),
    }
}
