//! Slurm and munge (issue #25) on fresh systemd hosts: one apply with
//! `slurm` on and a user; verify's `slurm` check passes; `sinfo` shows every
//! worker idle; a user's batch job runs an MPI program across every worker
//! (Open MPI launching through Slurm); the same after `lab reboot all` with
//! no apply; `add-node` of a third worker and it takes a job; `remove-node`
//! of it while a job runs on the others, which keeps running; the munge and
//! slurm accounts have the inventory's IDs everywhere and the munge key is
//! one, munge's own and never shown. The admin tools on the same cluster
//! (issue #23): clush and pdsh on the head reach the groups clusterctl
//! writes (the partition too) and follow add-node and remove-node;
//! `clusterctl exec` over both transports folds the answers and exits 1
//! when a node fails; the Ansible export reaches every node. Needs root.

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
    yaml.push_str("tools:\n  clustershell: true\n  pdsh: true\n");
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
    admin_tools(&lab, inv, "w1\nw2\n");

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
    assert_eq!(
        lab.sh("head", "clush -N -g workers hostname | sort"),
        "w1\nw2\nw3\n"
    );

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
    assert_eq!(
        lab.sh(
            "head",
            "clush -N -g workers hostname | sort; pdsh -g workers hostname | sort"
        ),
        "w1\nw2\nw1: w1\nw2: w2\n",
        "the groups follow remove-node"
    );
    lab.sh("head", &format!("scancel {job}"));
    lab.down();
}

/// Issue #23 on the applied cluster: clush and pdsh on the head reach each
/// group clusterctl wrote (`workers`, and the Slurm partition `batch`);
/// `clusterctl exec` over both transports folds identical answers and
/// exits 1 when a node fails; the Ansible export passes
/// `ansible-inventory` and reaches every node (`-m raw`: the lab's workers
/// have no Python for `-m ping`).
fn admin_tools(lab: &Lab, inv: &str, workers: &str) {
    for group in ["workers", "batch"] {
        assert_eq!(
            lab.sh("head", &format!("clush -N -g {group} hostname | sort")),
            workers,
            "clush -g {group}"
        );
    }
    let pdsh = lab.sh("head", "pdsh -g workers hostname | sort");
    let want: String = workers.lines().map(|w| format!("{w}: {w}\n")).collect();
    assert_eq!(pdsh, want, "pdsh -g workers");

    for transport in ["openssh", "russh"] {
        let exec = |args: &[&str]| {
            let mut all = vec!["exec", "-i", inv, "--transport", transport];
            all.extend(args);
            lab.run(&all)
        };
        let out = exec(&[
            "@all",
            "--shell",
            "--",
            "test \"$(hostname)\" != w2 && echo fine",
        ]);
        assert_eq!(out.status.code(), Some(1), "{}", describe("exec", &out));
        assert_eq!(
            text(&out.stdout),
            "---------------\nhead,w1 (2)\n---------------\nfine\n---------------\nw2 (1) exit 1\n---------------\n",
            "{transport}"
        );
        assert!(
            text(&out.stderr).contains("exec: 3 node(s): 2 ok, failed w2"),
            "{}",
            describe("exec", &out)
        );
        // Words reach the node as they are: no shell re-splits them.
        let out = exec(&["w1", "--", "printf", "%s|", "a b", "$HOME"]);
        assert_eq!(out.status.code(), Some(0), "{}", describe("exec", &out));
        assert!(
            text(&out.stdout).contains("\na b|$HOME|"),
            "{}",
            describe("exec", &out)
        );
    }

    let out = lab.run(&["inventory", "-i", inv, "--format", "ansible"]);
    assert!(out.status.success(), "{}", describe("inventory", &out));
    let hosts = lab.dir.path().join("lab/hosts.yml");
    fs::write(&hosts, &out.stdout).unwrap();
    let ansible = |args: &[&str]| {
        std::process::Command::new(args[0])
            .args(&args[1..])
            .env("ANSIBLE_LOCAL_TEMP", lab.dir.path().join("ansible-tmp"))
            .env("ANSIBLE_NOCOLOR", "1")
            .output()
            .unwrap()
    };
    let hosts = hosts.to_str().unwrap();
    let out = ansible(&["ansible-inventory", "-i", hosts, "--list"]);
    assert!(
        out.status.success(),
        "{}",
        describe("ansible-inventory", &out)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut in_workers: Vec<String> = list["workers"]["hosts"]
        .as_array()
        .expect("a workers group")
        .iter()
        .map(|h| h.as_str().unwrap().to_string())
        .collect();
    in_workers.sort();
    assert_eq!(in_workers.join("\n") + "\n", workers);
    let out = ansible(&[
        "ansible", "all", "-i", hosts, "-m", "raw", "-a", "hostname", "-o",
    ]);
    assert!(out.status.success(), "{}", describe("ansible all", &out));
    let said = text(&out.stdout);
    for n in std::iter::once("head").chain(workers.lines()) {
        assert!(
            said.contains(&format!("{n} | CHANGED | rc=0 | (stdout) {n}")),
            "{n}: {said}"
        );
    }
}
