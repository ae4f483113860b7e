//! The head's NFS server choice (`nfs.server`): the kernel's nfsd with
//! `/etc/exports` (the block step in the catalog; the default on real
//! hosts) or nfs-ganesha, a userspace NFSv4 server configured by a whole
//! `/etc/ganesha/ganesha.conf` (a kernel without nfsd, such as the lab's).

use super::{whole, FileSpec, Handler, Step, Subject};
use crate::cluster::{NfsServer, Role};
use crate::family::{Pkg, Service};

/// NFS on, served by the kernel.
pub(super) fn kernel_server(s: &Subject) -> bool {
    s.cluster.nfs.enabled && s.cluster.nfs.server == NfsServer::Kernel
}

fn ganesha(s: &Subject) -> bool {
    s.cluster.nfs.enabled && s.cluster.nfs.server == NfsServer::Ganesha
}

const GANESHA_CONF: &[FileSpec] = &[whole(
    "head/etc/ganesha/ganesha.conf.j2",
    "/etc/ganesha/ganesha.conf",
    ganesha,
)];

pub(super) const HEAD_NFS_GANESHA: Step = Step {
    id: "head-nfs-ganesha",
    title: "NFS exports (nfs-ganesha)",
    role: Role::Head,
    files: GANESHA_CONF,
    validator: None,
    handler: Some(Handler::Restart(Service::NfsGanesha)),
    packages: &[Pkg::NfsGanesha, Pkg::NfsGaneshaVfs],
};

#[cfg(test)]
mod tests {
    use crate::cluster::Cluster;
    use crate::templates::Templates;

    /// `server: ganesha` gives the head ganesha.conf instead of the
    /// /etc/exports block: NFSv4, the LAN as the only client.
    #[test]
    fn ganesha_replaces_the_exports_block() {
        let yaml = include_str!("../../examples/cluster.yaml")
            .replace("  # server: kernel ", "  server: ganesha  ");
        let c = Cluster::from_str(&yaml, std::path::Path::new("x.yaml")).unwrap();
        let t = Templates::load(None).unwrap();
        let files = crate::desired::render_node(&c, &t, "head").unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path).collect();
        assert!(!paths.contains(&"/etc/exports"), "{paths:?}");
        let conf = files
            .iter()
            .find(|f| f.path == "/etc/ganesha/ganesha.conf")
            .expect("ganesha.conf");
        for line in [
            "    Protocols = 4;",
            "    Path = /opt/shared;",
            "        Clients = 10.0.0.0/24;",
            "        Access_Type = RO;",
            "        Access_Type = RW;",
        ] {
            assert!(
                conf.content.lines().any(|l| l == line),
                "{line}\n{}",
                conf.content
            );
        }
    }
}
