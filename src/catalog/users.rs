//! Passwordless SSH between cluster nodes for the cluster's users, by
//! host-based authentication (as classic HPC clusters do): each node's sshd
//! accepts a user from another cluster node when `/etc/ssh/shosts.equiv`
//! lists that node and its host key is in `/etc/ssh/ssh_known_hosts` (the
//! cluster key's known_hosts block lists every node's key under its name,
//! FQDN and address); the client signs with its host key through
//! `ssh-keysign`. No per-user secret exists anywhere; root is not covered
//! (sshd never accepts root through shosts.equiv; root has the cluster
//! key). On with `users` and the cluster key. The sshd drop-in is checked
//! with `sshd -t` and its restart is guarded by commit-confirm.
//!
//! A user's own keys (`ssh_authorized_keys`, for logging in from outside
//! the cluster) are one root-owned file, `/etc/ssh/clusterctl_authorized_keys`
//! (`USER KEY` lines), that sshd reads through a small managed
//! `AuthorizedKeysCommand` run as `nobody`: nothing is written into homes
//! (which may be on NFS with root squashed), and the user's own
//! `~/.ssh/authorized_keys` still works beside it.

use super::{whole, FileSpec, Handler, Step, Subject, Validator};
use crate::cluster::Role;
use crate::family::Service;

fn hostbased(s: &Subject) -> bool {
    !s.cluster.users.is_empty()
        && s.cluster.mpi.cluster_key
        && s.cluster.keys.as_ref().is_some_and(|k| k.public.is_some())
}

/// With users, their own keys' file and command are managed whether or not
/// anyone has keys: the last key taken out is then taken off every node
/// (the file empties). The sshd drop-in comes with them too: it names the
/// command, and host-based authentication when that is on.
fn authorized_keys(s: &Subject) -> bool {
    !s.cluster.users.is_empty()
}

const FILES: &[FileSpec] = &[
    whole(
        "common/etc/ssh/shosts.equiv.j2",
        "/etc/ssh/shosts.equiv",
        hostbased,
    ),
    whole(
        "common/etc/ssh/ssh_config.d/clusterctl-users.conf.j2",
        "/etc/ssh/ssh_config.d/clusterctl-users.conf",
        hostbased,
    ),
    FileSpec {
        validator: Some(Validator::Sshd),
        ..whole(
            "common/etc/ssh/sshd_config.d/clusterctl-users.conf.j2",
            "/etc/ssh/sshd_config.d/clusterctl-users.conf",
            authorized_keys,
        )
    },
];

/// The users' own keys: read by sshd at each login, so a change needs no
/// restart (the step that follows has the drop-in naming the command).
const KEY_FILES: &[FileSpec] = &[
    whole(
        "common/etc/ssh/clusterctl_authorized_keys.j2",
        "/etc/ssh/clusterctl_authorized_keys",
        authorized_keys,
    ),
    FileSpec {
        mode: 0o755,
        ..whole(
            "common/etc/ssh/clusterctl-authorized-keys.j2",
            "/etc/ssh/clusterctl-authorized-keys",
            authorized_keys,
        )
    },
];

pub(super) const HEAD_USERS_KEYS: Step = Step {
    id: "head-users-keys",
    title: "cluster users' own SSH keys",
    role: Role::Head,
    files: KEY_FILES,
    validator: None,
    handler: None,
    packages: &[],
};

pub(super) const WORKER_USERS_KEYS: Step = Step {
    id: "worker-users-keys",
    role: Role::Worker,
    ..HEAD_USERS_KEYS
};

pub(super) const HEAD_USERS_SSH: Step = Step {
    id: "head-users-ssh",
    title: "host-based SSH for cluster users",
    role: Role::Head,
    files: FILES,
    validator: None,
    handler: Some(Handler::Restart(Service::Ssh)),
    packages: &[],
};

pub(super) const WORKER_USERS_SSH: Step = Step {
    id: "worker-users-ssh",
    role: Role::Worker,
    ..HEAD_USERS_SSH
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{Cluster, ClusterKeys};
    use crate::facts::Facts;
    use crate::templates::Templates;

    fn cluster(users: bool) -> Cluster {
        let mut text = include_str!("../../inventories/lab.yaml")
            .replace("\nmpi:\n", "\nmpi:\n  cluster_key: true\n");
        if users {
            text.push_str("users:\n  - name: alice\n    uid: 2001\n");
        }
        let mut c = Cluster::from_str(&text, std::path::Path::new("c.yaml")).unwrap();
        c.keys = Some(ClusterKeys {
            public: Some("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ clusterctl@head".into()),
            ..ClusterKeys::default()
        });
        c
    }

    fn files(c: &Cluster, node: &str) -> Vec<(String, String)> {
        let t = Templates::load(None).unwrap();
        crate::desired::desired(c, &t, node, &Facts::assumed())
            .unwrap()
            .files
            .into_iter()
            .filter(|f| f.step.ends_with("users-ssh"))
            .map(|f| (f.path.to_string(), f.content))
            .collect()
    }

    #[test]
    fn host_based_ssh_comes_with_users_and_the_cluster_key() {
        assert!(
            files(&cluster(false), "head").is_empty(),
            "no users: sshd untouched"
        );
        let c = cluster(true);
        let w = c.workers[0].name.to_string();
        let got = files(&c, &w);
        let paths: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/etc/ssh/shosts.equiv",
                "/etc/ssh/ssh_config.d/clusterctl-users.conf",
                "/etc/ssh/sshd_config.d/clusterctl-users.conf"
            ]
        );
        let equiv = &got[0].1;
        for h in c.hosts() {
            for n in [h.name.clone(), h.fqdn.clone(), h.ip.to_string()] {
                assert!(equiv.lines().any(|l| l == n), "{n} in\n{equiv}");
            }
        }
        // Host names only: a `HOST USER` line would let that one user in as anyone.
        let entries = equiv.lines().filter(|l| !l.starts_with('#'));
        assert!(
            entries.clone().all(|l| l.split_whitespace().count() == 1),
            "{equiv}"
        );
        let client = &got[1].1;
        // ssh-keysign reads its switch outside any Host block.
        let before_host = client.split("\nHost ").next().unwrap();
        assert!(before_host.contains("\nEnableSSHKeysign yes"), "{client}");
        assert!(
            client.contains("    HostbasedAuthentication yes"),
            "{client}"
        );
        assert!(got[2].1.contains("\nHostbasedAuthentication yes\n"));
        // The tools come with their packages (Debian's names here).
        let t = Templates::load(None).unwrap();
        let d = crate::desired::desired(&c, &t, &w, &Facts::assumed()).unwrap();
        for p in ["passwd", "openssh-client"] {
            assert!(d.packages.contains(&p), "{p}: {:?}", d.packages);
        }
        // The sshd drop-in is checked by sshd -t, its restart is guarded.
        assert_eq!(FILES[2].validator, Some(Validator::Sshd));
        assert!(Handler::Restart(Service::Ssh).can_cut_path());
    }
}
