//! The benchmark harness cannot rot: `scripts/bench.sh --smoke` (N = 3, one
//! round) runs on a light lab with this build: the floor, clusterctl over
//! both transports, pyinfra and Ansible, each first apply / no-op / diff,
//! every node's files checked against clusterctl's after every run and reset
//! (the driver exits non-zero on any difference). Needs root, like the lab
//! tests, and PyPI the first time (the venv is cached in
//! /var/cache/clusterctl-bench).

use std::collections::BTreeSet;
use std::process::Command;

use crate::lab::{describe, serial, Lab, TestLab};

#[test]
#[ignore = "needs root (a light lab) and PyPI for pyinfra and ansible-core; CI runs it as root"]
fn bench_smoke_runs_every_tool_in_every_mode_with_identical_files() {
    let _serial = serial();
    let lab = Lab::new(TestLab::Bench);
    let out_dir = lab.dir.path().join("bench");
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/bench.sh"))
        .args(["--smoke", "--wan", &lab.wan, "--lan", &lab.lan])
        .env("CLUSTERCTL", &lab.bin)
        .env("BENCH_OUT", &out_dir)
        .env("BENCH_PREFIX", &lab.prefix)
        .output()
        .expect("run scripts/bench.sh");
    assert!(
        out.status.success(),
        "{}",
        describe("bench.sh --smoke", &out)
    );

    let raw = std::fs::read_to_string(out_dir.join("results.jsonl")).expect("results.jsonl");
    let rows: Vec<serde_json::Value> = raw
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let cells: BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["tool"].as_str().unwrap().into(),
                r["mode"].as_str().unwrap().into(),
            )
        })
        .collect();
    let mut want = BTreeSet::new();
    for floor in ["floor-fresh", "floor-c25519", "floor-mux"] {
        want.insert((floor.to_string(), "connect".to_string()));
    }
    for tool in [
        "clusterctl-openssh",
        "clusterctl-russh",
        "pyinfra",
        "ansible",
    ] {
        for mode in ["first", "noop", "diff"] {
            want.insert((tool.to_string(), mode.to_string()));
        }
    }
    assert_eq!(cells, want, "one figure per tool and mode:\n{raw}");
    assert_eq!(rows.len(), want.len(), "one round:\n{raw}");
    for r in &rows {
        assert_eq!(r["n"], 3, "{r}");
        assert!(r["wall_s"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["maxrss_kib"].as_u64().unwrap() > 0, "{r}");
        if r["tool"].as_str().unwrap().starts_with("clusterctl") {
            // probe, write, handlers, confirm on fresh nodes; the probe alone after
            let trips = r["round_trips_per_node"].as_f64().unwrap();
            let want = if r["mode"] == "first" { 4.0 } else { 1.0 };
            assert_eq!(trips, want, "{r}");
        }
    }
    let table = std::fs::read_to_string(out_dir.join("table.md")).expect("table.md");
    for mode in ["first", "noop", "diff"] {
        assert!(table.contains(&format!("| 3 | {mode} | ")), "{table}");
    }
    assert!(table.contains("pyinfra / openssh"), "{table}");
    assert!(table.contains("russh / floor c25519"), "{table}");
}
