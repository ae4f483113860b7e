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

use super::{whole, FileSpec, Handler, Step, Subject, Validator};
use crate::cluster::Role;
use crate::family::Service;

fn hostbased(s: &Subject) -> bool {
    !s.cluster.users.is_empty()
        && s.cluster.mpi.cluster_key
        && s.cluster.keys.as_ref().is_some_and(|k| k.public.is_some())
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
            hostbased,
        )
    },
];

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
