//! A scheduler (`slurm:`): munge and Slurm on every node. The head runs
//! slurmctld (and slurmd when it runs jobs), the workers slurmd. The
//! `munge` and `slurm` accounts get the inventory's fixed IDs before their
//! packages would make them (`system_accounts`, made in the write round
//! trip before the install). One munge key for the cluster, made once on
//! the head by the gather (`engine/keys.sh`, kept in
//! `/var/lib/clusterctl/munge.key`), lands on every node as
//! `/etc/munge/munge.key`, munge's own, 0400, masked in every diff.
//! `slurm.conf` is the same on every node: each node line carries the
//! processors and memory the gather read on that node, so slurmctld never
//! drains a node for a mismatch; nodes not heard from yet are left out
//! (apply lists them once they answer). What every node's cgroups allow
//! picks the process tracking and task plugins.

use super::{whole, FileSpec, Handler, Step, Subject};
use crate::cluster::{Cluster, Role};
use crate::family::{Family, Pkg};
use crate::plan::SystemAccount;

/// munge reads its key as itself; nobody else may.
const MUNGE_KEY: FileSpec = FileSpec {
    mode: 0o400,
    owner: "munge",
    group: "munge",
    secret: true,
    ..whole(
        "common/etc/munge/munge.key.j2",
        "/etc/munge/munge.key",
        munge_key_known,
    )
};

const SLURM_FILES: &[FileSpec] = &[
    whole(
        "common/etc/slurm/slurm.conf.j2",
        "/etc/slurm/slurm.conf",
        on,
    ),
    whole(
        "common/etc/slurm/cgroup.conf.j2",
        "/etc/slurm/cgroup.conf",
        cgroup_plugins,
    ),
];

fn on(s: &Subject) -> bool {
    s.cluster.slurm.enabled
}

fn munge_key_known(s: &Subject) -> bool {
    on(s) && s.cluster.keys.as_ref().is_some_and(|k| k.munge.is_some())
}

/// Slurm's cgroup plugins: only when every node that runs jobs was heard
/// from and has a pure cgroup v2 hierarchy under systemd, outside a
/// container (slurm.conf is one file for all).
pub fn cgroup_plugins(s: &Subject) -> bool {
    on(s) && uses_cgroup(s.cluster)
}

/// See [`cgroup_plugins`]: decided over the nodes slurm.conf lists (a
/// node not heard from yet cannot flip every other node's plugins).
pub fn uses_cgroup(c: &Cluster) -> bool {
    let hw = c.slurm_hardware();
    !hw.is_empty() && hw.iter().all(|h| h.cgroup)
}

/// Where the head records the hardware slurm.conf lists, so a node that
/// is down at the next apply keeps its line (and its jobs).
pub const HARDWARE_RECORD: &str = "/var/lib/clusterctl/slurm-nodes";

/// munge's and slurm's accounts with the cluster's IDs (none without Slurm).
pub fn system_accounts(c: &Cluster, family: &Family) -> Vec<SystemAccount> {
    if !c.slurm.enabled {
        return Vec::new();
    }
    vec![
        SystemAccount {
            name: "munge",
            id: c.slurm.munge_uid,
            field: "munge_uid",
            shell: family.nologin,
        },
        SystemAccount {
            name: "slurm",
            id: c.slurm.slurm_uid,
            field: "slurm_uid",
            shell: family.nologin,
        },
    ]
}

/// With Slurm on: the node's family packages what the node needs, else
/// the reason (Alpine packages no Slurm): refused, never skipped.
pub fn packaged(c: &Cluster, role: Role, family: &Family) -> Result<(), String> {
    if !c.slurm.enabled {
        return Ok(());
    }
    let mut need = vec![Pkg::Munge];
    match role {
        Role::Head => need.push(Pkg::Slurmctld),
        Role::Worker => need.push(Pkg::Slurmd),
    }
    need.push(Pkg::SlurmClient);
    need.extend(match role {
        Role::Head => head_extra_packages(c),
        Role::Worker => Vec::new(),
    });
    let missing: Vec<&str> = need
        .into_iter()
        .filter(|p| family.package(*p).is_none())
        .map(|p| match p {
            Pkg::Munge => "munge",
            Pkg::Slurmctld => "slurmctld",
            Pkg::Slurmd => "slurmd",
            _ => "Slurm's client tools",
        })
        .collect();
    match missing.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "slurm: {} packages no {} (Slurm needs it on this node; turn slurm off or use another distribution)",
            family.title,
            missing.join(", ")
        )),
    }
}

/// slurmd's package on the head when it runs jobs (the head's step names
/// slurmctld's; this one depends on the inventory).
pub fn head_extra_packages(c: &Cluster) -> Vec<Pkg> {
    match c.slurm.enabled && c.slurm.head_runs_jobs {
        true => vec![Pkg::Slurmd],
        false => Vec::new(),
    }
}

pub(super) const HEAD_MUNGE: Step = Step {
    id: "head-munge",
    title: "munge (Slurm's authentication)",
    role: Role::Head,
    files: &[MUNGE_KEY],
    validator: None,
    handler: Some(Handler::Restart(crate::family::Service::Munge)),
    packages: &[Pkg::Munge],
};

pub(super) const WORKER_MUNGE: Step = Step {
    id: "worker-munge",
    role: Role::Worker,
    ..HEAD_MUNGE
};

/// The head's record of the listed nodes' hardware (read back by the
/// gather): no handler, nothing reads it but clusterctl.
pub(super) const HEAD_SLURM_RECORD: Step = Step {
    id: "head-slurm-record",
    title: "record of the nodes slurm.conf lists",
    role: Role::Head,
    files: &[whole(
        "head/var/lib/clusterctl/slurm-nodes.j2",
        HARDWARE_RECORD,
        on,
    )],
    validator: None,
    handler: None,
    packages: &[],
};

pub(super) const HEAD_SLURM: Step = Step {
    id: "head-slurm",
    title: "Slurm controller",
    role: Role::Head,
    files: SLURM_FILES,
    validator: None,
    handler: Some(Handler::Slurm),
    packages: &[Pkg::Slurmctld, Pkg::SlurmClient],
};

pub(super) const WORKER_SLURM: Step = Step {
    id: "worker-slurm",
    title: "Slurm node daemon",
    role: Role::Worker,
    files: SLURM_FILES,
    validator: None,
    handler: Some(Handler::Slurm),
    packages: &[Pkg::Slurmd, Pkg::SlurmClient],
};
