//! Slurm and munge (issue #25) on fresh systemd hosts: one apply with
//! `slurm` on and a user; verify's `slurm` check passes; `sinfo` shows every
//! worker idle; a user's batch job runs an MPI program across every worker
//! (Open MPI launching through Slurm); the same after `lab reboot all` with
//! no apply; `add-node` of a third worker and it takes a job; `remove-node`
//! of it while a job runs on the others, which keeps running; the munge and
//! slurm accounts have the inventory's IDs everywhere and the munge key is
//! one, munge's own and never shown. Needs root.

use std::fs;

use super::lab::{describe, serial, text, Lab, TestLab, Watched};

/// The lab's inventory without `drop` (still running, "switched off"),
/// with Open MPI, one user and Slurm.
fn with_slurm(lab: &Lab, drop: &str) -> (&'static str, String) {
    let inv = "lab/cluster.yaml";
    let mac = lab.drop_worker(inv, drop);
    let path = lab.dir.path().join(inv);
    let mut yaml = fs::read_to_string(&path).unwrap();
    let at = yaml
        .find("\nmpi:\n")
        .expect("the lab inventory has an mpi section");
    yaml.truncate(at + 1);
    yaml.push_str("mpi:\n  slots: 2\n  hostfiles: [openmpi]\n  install: openmpi\n");
    yaml.push_str("users:\n  - name: alice\n    uid: 2001\n");
    yaml.push_str("slurm:\n  enabled: true\n");
    fs::write(&path, yaml).unwrap();
    (inv, mac)
}

/// alice's batch job: one MPI rank per node of the allocation, each
/// printing its host name into a file on the node that ran the script.
fn batch_job(lab: &Lab, nodes: u32, tag: &str) -> String {
    let lan = &lab.lan;
    let cmd = format!(
        "cd /tmp && runuser -u alice -- sbatch --wait -N {nodes} -t 2 --chdir=/tmp -o /tmp/{tag}.out \
         --wrap 'mpirun --map-by ppr:1:node --mca oob_tcp_if_include {lan} --mca btl_tcp_if_include {lan} hostname -s' \
         2>&1; echo exit=$?"
    );
    let out = lab.sh("head", &cmd);
    assert!(out.ends_with("exit=0\n"), "{tag}: {out}");
    // The batch script ran on the first node of its allocation.
    let mut names: Vec<String> = ["w1", "w2", "w3"]
        .iter()
        .flat_map(|n| {
            lab.sh(n, &format!("cat /tmp/{tag}.out 2>/dev/null || true"))
                .lines()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    names.sort();
    names.join(" ")
}

#[test]
#[ignore = "needs root: run with --include-ignored (CI does)"]
fn slurm_runs_a_users_mpi_job_across_every_worker_and_follows_add_and_remove_node() {
    let _g = serial();
    let lab = Lab::new(TestLab::Slurm);
    lab.up_with(3, &["--kind", "systemd", "--network", "ifupdown"]);
    // w3 is "switched off" until it is added (its DHCP client stopped).
    let (inv, w3_mac) = with_slurm(&lab, "w3");
    lab.sh("w3", "kill $(cat /run/dhclient.eth0.pid)");

    let out = lab.run(&["apply", "-i", inv, "--wait", "60"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe("apply", &out));
    let key = lab.sh("head", "cat /var/lib/clusterctl/munge.key");
    assert_eq!(key.len(), 1024);
    for shown in [text(&out.stdout), text(&out.stderr)] {
        assert!(!shown.contains(&key), "the munge key is never shown");
    }
    for n in ["head", "w1", "w2"] {
        assert_eq!(
            lab.sh(n, "id munge; id slurm"),
            "uid=64029(munge) gid=64029(munge) groups=64029(munge)\nuid=64030(slurm) gid=64030(slurm) groups=64030(slurm)\n",
            "{n}"
        );
        assert_eq!(
            lab.sh(n, "stat -c '%U:%G %a' /etc/munge/munge.key && sha256sum </etc/munge/munge.key"),
            lab.sh("head", "stat -c '%U:%G %a' /etc/munge/munge.key && sha256sum </var/lib/clusterctl/munge.key"),
            "{n}: one key, munge's, 0400"
        );
    }
    assert_eq!(
        lab.sh("head", "stat -c '%U:%G %a' /etc/munge/munge.key"),
        "munge:munge 400\n"
    );
    let conf = lab.sh("head", "cat /etc/slurm/slurm.conf");
    assert_eq!(
        conf,
        lab.sh("w2", "cat /etc/slurm/slurm.conf"),
        "the same file everywhere"
    );
    // w1's line against what slurmd itself reads there.
    let c = lab.sh("w1", "slurmd -C | head -n 1");
    let real = |k: &str| -> u64 {
        c.split_whitespace()
            .find_map(|f| f.strip_prefix(k))
            .unwrap()
            .parse()
            .unwrap()
    };
    let line = conf
        .lines()
        .find(|l| l.starts_with("NodeName=w1 "))
        .expect("w1's node line");
    let ours = |k: &str| -> u64 {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(k))
            .unwrap()
            .parse()
            .unwrap()
    };
    for k in ["CPUs=", "CoresPerSocket=", "ThreadsPerCore="] {
        assert_eq!(ours(k), real(k), "{k} in {line} against slurmd -C {c}");
    }
    assert_eq!(
        ours("Sockets="),
        real("SocketsPerBoard=") * real("Boards="),
        "{line} / {c}"
    );
    let (mem, got) = (ours("RealMemory="), real("RealMemory="));
    assert!(
        mem <= got && mem >= got * 98 / 100,
        "RealMemory {mem} against {got}: 1% below"
    );

    let out = lab.run(&["verify", "-i", inv, "-v"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe("verify", &out));
    assert!(
        text(&out.stdout).contains(
            "head slurm: 2 node(s) up; srun and an MPI job as alice through Slurm on w1 w2"
        ),
        "{}",
        describe("verify", &out)
    );
    assert_eq!(
        lab.sh("head", "sinfo -h -N -o '%N %t'"),
        "w1 idle\nw2 idle\n"
    );
    assert_eq!(batch_job(&lab, 2, "first"), "w1 w2");

    // A second apply changes nothing.
    let out = lab.run(&["apply", "-i", inv]);
    assert!(
        text(&out.stdout).contains("ok=3 changed=0 failed=0 unreachable=0"),
        "{}",
        describe("second apply", &out)
    );

    // After a reboot with no apply: munge, slurmctld and slurmd come back
    // and the same job runs.
    let out = lab.run(&["lab", "reboot", "all"]);
    assert!(out.status.success(), "{}", describe("reboot", &out));
    lab.sh("w3", "kill $(cat /run/dhclient.eth0.pid)");
    let out = lab.run(&["verify", "-i", inv]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        describe("verify after reboot", &out)
    );
    assert_eq!(batch_job(&lab, 2, "rebooted"), "w1 w2");

    // add-node: w3 joins slurm.conf everywhere and takes a job.
    let w3 = lab.lan_ip(13);
    let mut run = Watched::spawn(lab.cmd(&[
        "add-node", "-i", inv, "w3", "--mac", &w3_mac, "--ip", &w3, "--yes",
    ]));
    run.wait_for(|l| l == "head: changed", 120);
    lab.sh(
        "w3",
        "dhclient -4 -nw -pf /run/dhclient.eth0.pid -lf /var/lib/dhcp/dhclient.eth0.leases eth0",
    );
    let (status, stdout, err_lines) = run.finish();
    assert_eq!(status.code(), Some(0), "{stdout}\n{err_lines:?}");
    let out = lab.run(&["verify", "-i", inv, "-v"]);
    assert!(
        text(&out.stdout).contains(
            "head slurm: 3 node(s) up; srun and an MPI job as alice through Slurm on w1 w2 w3"
        ),
        "{}",
        describe("verify after add-node", &out)
    );
    assert_eq!(batch_job(&lab, 3, "added"), "w1 w2 w3");

    // remove-node w3 while a job runs on w1 and w2: the daemons restart
    // with the new node list and the job keeps running.
    let job = lab.sh(
        "head",
        "cd /tmp && runuser -u alice -- sbatch --parsable -N 2 -w w1,w2 -t 10 --chdir=/tmp -o /dev/null --wrap 'sleep 300'",
    );
    let job = job.trim().to_string();
    let state = |lab: &Lab| {
        lab.sh(
            "head",
            &format!("squeue -h -j {job} -o %T 2>/dev/null || true"),
        )
    };
    for _ in 0..30 {
        if state(&lab) == "RUNNING\n" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    assert_eq!(state(&lab), "RUNNING\n", "job {job} started");
    let out = lab.run(&["remove-node", "-i", inv, "w3", "--yes", "-v"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        describe("remove-node", &out)
    );
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        all.contains("head: ran handler of head-slurm")
            && all.contains("w1: ran handler of worker-slurm"),
        "{}",
        describe("remove-node restarts the daemons", &out)
    );
    assert_eq!(state(&lab), "RUNNING\n", "job {job} survived the restarts");
    assert!(!lab.sh("w1", "cat /etc/slurm/slurm.conf").contains("w3"));
    assert_eq!(lab.sh("head", "sinfo -h -N -o '%N'"), "w1\nw2\n");
    lab.sh("head", &format!("scancel {job}"));
    lab.down();
}
