//! `clusterctl check`: load and validate the inventory offline.

use crate::cli::CheckArgs;
use crate::cluster::Cluster;
use crate::error::Result;

pub fn run(args: CheckArgs) -> Result<i32> {
    let path = &args.inventory.path;
    let cluster = Cluster::load(path)?;
    println!(
        "{}: ok: cluster {} ({}), head {} + {} worker{} on {}",
        path.display(),
        cluster.name,
        cluster.domain,
        cluster.head.name,
        cluster.workers.len(),
        if cluster.workers.len() == 1 { "" } else { "s" },
        cluster.lan.cidr
    );
    Ok(0)
}
