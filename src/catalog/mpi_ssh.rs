//! The steps that make the cluster run jobs: OpenMPI on every node (with
//! `mpi.install: openmpi`) and the cluster SSH key for root (on with
//! `mpi.cluster_key`, the default when MPI is installed): `authorized_keys`
//! and the global known_hosts (blocks), the client config that picks the
//! key for cluster nodes, and on workers the key itself (mode 0600, secret).
//! The key's files appear once the keys were gathered (`cluster_key.rs`).

use super::{whole, FileSpec, Manage, Step, Subject};
use crate::cluster::{MpiInstall, Role};
use crate::family::Pkg;

fn openmpi(s: &Subject) -> bool {
    s.cluster.mpi.install == Some(MpiInstall::Openmpi)
}
fn keyed(s: &Subject) -> bool {
    s.cluster.mpi.cluster_key && s.cluster.keys.as_ref().is_some_and(|k| k.public.is_some())
}
fn private_key(s: &Subject) -> bool {
    keyed(s) && s.cluster.keys.as_ref().is_some_and(|k| k.private.is_some())
}

const MPI_ENV: &[FileSpec] = &[whole(
    "common/etc/profile.d/clusterctl-mpi.sh.j2",
    "/etc/profile.d/clusterctl-mpi.sh",
    openmpi,
)];

const fn root_block(template: &'static str, path: &'static str, mode: u32) -> FileSpec {
    FileSpec {
        template,
        path,
        mode,
        manage: Manage::Block,
        when: keyed,
        secret: false,
        validator: None,
        owner: "root",
        group: "root",
    }
}

/// What every node gets for the key.
const KEY_COMMON: [FileSpec; 3] = [
    root_block(
        "common/root/.ssh/authorized_keys.j2",
        "/root/.ssh/authorized_keys",
        0o600,
    ),
    root_block(
        "common/etc/ssh/ssh_known_hosts.j2",
        "/etc/ssh/ssh_known_hosts",
        0o644,
    ),
    whole(
        "common/etc/ssh/ssh_config.d/clusterctl.conf.j2",
        "/etc/ssh/ssh_config.d/clusterctl.conf",
        keyed,
    ),
];

const WORKER_KEY: &[FileSpec] = &[
    KEY_COMMON[0],
    KEY_COMMON[1],
    KEY_COMMON[2],
    FileSpec {
        mode: 0o600,
        secret: true,
        ..whole(
            "worker/root/.ssh/id_clusterctl.j2",
            "/root/.ssh/id_clusterctl",
            private_key,
        )
    },
    whole(
        "worker/root/.ssh/id_clusterctl.pub.j2",
        "/root/.ssh/id_clusterctl.pub",
        private_key,
    ),
];

pub(super) const HEAD_OPENMPI: Step = Step {
    id: "head-openmpi",
    title: "Open MPI",
    role: Role::Head,
    files: MPI_ENV,
    validator: None,
    handler: None,
    packages: &[Pkg::Openmpi],
};

pub(super) const HEAD_CLUSTER_KEY: Step = Step {
    id: "head-cluster-key",
    title: "cluster SSH key",
    role: Role::Head,
    files: &KEY_COMMON,
    validator: None,
    handler: None,
    packages: &[],
};

pub(super) const WORKER_OPENMPI: Step = Step {
    id: "worker-openmpi",
    role: Role::Worker,
    ..HEAD_OPENMPI
};

pub(super) const WORKER_CLUSTER_KEY: Step = Step {
    id: "worker-cluster-key",
    role: Role::Worker,
    files: WORKER_KEY,
    ..HEAD_CLUSTER_KEY
};
