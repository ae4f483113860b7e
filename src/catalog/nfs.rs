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

    fn nfs_files(exports: &str, ganesha: bool) -> Vec<crate::desired::RenderedFile> {
        let mut yaml = include_str!("../../examples/cluster.yaml").to_string();
        let start = yaml.find("  exports:\n").unwrap();
        let end = start + yaml[start..].find("\n\n").unwrap();
        yaml.replace_range(start..end, exports.trim_end());
        if ganesha {
            yaml = yaml.replace("  # server: kernel ", "  server: ganesha  ");
        }
        let c = Cluster::from_str(&yaml, std::path::Path::new("x.yaml")).unwrap();
        let t = Templates::load(None).unwrap();
        let mut files = crate::desired::render_node(&c, &t, "head").unwrap();
        files.extend(crate::desired::render_node(&c, &t, "node01").unwrap());
        files
    }

    fn content(files: &[crate::desired::RenderedFile], path: &str) -> String {
        files
            .iter()
            .find(|f| f.path == path)
            .expect(path)
            .content
            .clone()
    }

    /// Issue 22: ganesha does not read /etc/exports, and every export used
    /// to become No_Root_Squash. It now says what the options say (root
    /// squashed unless `no_root_squash`, as the kernel's server does).
    #[test]
    fn ganesha_squashes_as_the_options_say() {
        let files = nfs_files(
            "  exports:\n    - path: /srv/a\n      options: rw,sync\n    - path: /srv/b\n      options: ro,all_squash,anonuid=1000,anongid=100,sec=krb5p\n    - path: /srv/c\n      options: rw,no_root_squash\n",
            true,
        );
        let conf = content(&files, "/etc/ganesha/ganesha.conf");
        let blocks: Vec<&str> = conf.split("EXPORT {").skip(1).collect();
        assert_eq!(blocks.len(), 3, "{conf}");
        assert!(blocks[0].contains("Squash = Root_Squash;\n"), "{conf}");
        assert!(blocks[0].contains("SecType = sys;\n"), "{conf}");
        assert!(!blocks[0].contains("Anonymous_"), "{conf}");
        for line in [
            "Squash = All_Squash;",
            "Anonymous_Uid = 1000;",
            "Anonymous_Gid = 100;",
            "SecType = krb5p;",
            "Access_Type = RO;",
        ] {
            assert!(blocks[1].contains(line), "{line}: {conf}");
        }
        assert!(blocks[2].contains("Squash = No_Root_Squash;\n"), "{conf}");
    }

    /// Issue 22: a share mounted inside another was written to fstab first,
    /// and `mount -a` then hid it under its parent.
    #[test]
    fn a_nested_mount_comes_after_its_parent_in_fstab() {
        let files = nfs_files(
            "  exports:\n    - path: /srv/data/scratch\n      mount: /data/scratch\n      options: rw\n    - path: /srv/data\n      mount: /data\n      options: rw\n    - path: /srv/lib\n      mount: /library/data\n      options: ro\n",
            false,
        );
        let fstab = content(&files, "/etc/fstab");
        let mounts: Vec<&str> = fstab
            .lines()
            .filter(|l| l.contains(" nfs") || l.contains("\tnfs\t"))
            .map(|l| l.split_whitespace().nth(1).unwrap())
            .collect();
        assert_eq!(
            mounts,
            ["/data", "/data/scratch", "/library/data"],
            "{fstab}"
        );
    }
}
