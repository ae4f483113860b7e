#!/usr/bin/env python3
"""The bench driver (scripts/bench.sh runs it): for each size, a light lab,
one bootstrap apply, then rounds in which every tool runs in turn (the floor,
clusterctl openssh and russh, pyinfra, Ansible: A B C, A B C, ...), each
clusterctl/pyinfra/Ansible turn being: reset the nodes to fresh, first apply,
no-op apply, diff with one changed value (MPI slots). Every node's managed
files are checked against clusterctl's after each run. Raw figures go to
results.jsonl, the table to stdout and table.md."""
import argparse
import datetime
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lab import Lab, role_of  # noqa: E402
from tools import HERE, MODES, Tools  # noqa: E402
import report  # noqa: E402

# What fits about an hour on this 2-core machine: Ansible takes about 3
# minutes per mode at N=50 (one round, 8 minutes; it would take over 15 per
# mode at 250); at 1000 only clusterctl with russh runs (for its RSS goal),
# one round: a fresh-ssh floor alone would take over 3 minutes per round.
DEFAULT_CAPS = ["ansible:50=1", "ansible:250=0", "all:1000=0", "clusterctl-russh:1000=1"]
ORDER = ["floor-fresh", "floor-c25519", "floor-mux", "clusterctl-openssh", "clusterctl-russh",
         "pyinfra", "ansible"]


class Context:
    pass


def say(msg):
    print(f"[{datetime.datetime.now(datetime.timezone.utc):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def measure(c, name, cmd, env=None, stdout=None, stderr=None):
    """Run cmd under measure.py; its figures (dict). Output goes to the log."""
    out = os.path.join(c.work, "measure.json")
    log = open(c.log, "a")
    log.write(f"\n=== {name}: {' '.join(cmd)}\n")
    log.flush()
    subprocess.run(
        [sys.executable, os.path.join(HERE, "measure.py"), out, *cmd],
        env=dict(os.environ, **(env or {})), stdout=stdout or log, stderr=stderr or log, check=True,
    )
    with open(out) as f:
        return json.load(f)


def render(c, inventory, out):
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run([c.clusterctl, "render", "-i", inventory, "--out", out], check=True,
                   stdout=subprocess.DEVNULL)


def paths_of(c):
    def fn(node):
        base = os.path.join(c.render, node)
        found = []
        for root, _, files in os.walk(base):
            found += ["/" + os.path.relpath(os.path.join(root, f), base) for f in files]
        return sorted(found)
    return fn


def manifest_from(c, report_json):
    """Files (step, path, mode, owner, block markers) and handlers (step, the
    exact command) per role, from clusterctl's first apply on fresh nodes."""
    nodes = {n["node"]: n for n in report_json["nodes"]}
    bad = [n for n, r in nodes.items() if r["status"] != "changed"]
    if bad:
        raise SystemExit(f"bootstrap apply: not changed on {bad[:5]}: see {c.log}")
    man = {}
    for role, node in (("head", "head"), ("worker", c.lab.workers[0])):
        r = nodes[node]
        files = []
        for ch in r["changes"]:
            files.append({k: ch[k] for k in ("step", "path", "mode", "owner", "group")})
        for p in paths_of(c)(node):  # rendered but already in sync (/etc/hostname)
            if p not in {f["path"] for f in files}:
                files.append({"step": "in-sync", "path": p, "mode": "0644", "owner": "root", "group": "root"})
        for f in files:
            with open(os.path.join(c.render, node) + f["path"]) as src:
                lines = src.read().splitlines()
            f["block"] = bool(lines) and lines[0].startswith("# BEGIN clusterctl")
            if f["block"]:
                f["begin"], f["end"] = lines[0][2:], lines[-1][2:]
        handlers = [{"step": h["step"], "command": h["command"]} for h in r["handlers"]]
        man[role] = {"files": files, "handlers": handlers}
    for w in c.lab.workers:  # every worker does the same steps as the first
        got = [(ch["step"], ch["path"]) for ch in nodes[w]["changes"]]
        want = [(f["step"], f["path"]) for f in man["worker"]["files"] if f["step"] != "in-sync"]
        if got != want:
            raise SystemExit(f"bootstrap: {w} changed {got}, {c.lab.workers[0]} {want}")
    return man


def check_files(c, what):
    """Every node's managed files as clusterctl left them (the reference)."""
    snap = c.lab.snapshot(paths_of(c))
    bad = {n: {p: (v, c.reference[n][p]) for p, v in s.items() if v != c.reference[n][p]}
           for n, s in snap.items()}
    bad = {n: d for n, d in bad.items() if d}
    if bad:
        first = sorted(bad)[:3]
        raise SystemExit(f"{what}: files differ from clusterctl's on {len(bad)} nodes, e.g. "
                         + json.dumps({n: bad[n] for n in first}))


def setup(c, n):
    lab = c.lab
    say(f"N={n}: lab up ({n} workers)")
    lab.down()
    lab.up()
    c.render = os.path.join(c.work, "render")
    c.render_alt = os.path.join(c.work, "render-alt")
    render(c, lab.inventory, c.render)
    with open(lab.inventory) as f:
        text = f.read()
    alt, k = re.subn(r"(?m)^  slots: 2$", "  slots: 3", text)
    assert k == 1, "lab inventory: no `slots: 2` line"
    c.alt_inventory = os.path.join(lab.dir, "cluster-alt.yaml")
    with open(c.alt_inventory, "w") as f:
        f.write(alt)
    render(c, c.alt_inventory, c.render_alt)
    c.pristine = lab.snapshot(paths_of(c))
    original = lab.each(lambda node: lab.sh(node, "cat /etc/hosts"))
    missing_dirs = {}  # what a fresh node lacks; Ansible's copy needs them made
    for role, node in (("head", "head"), ("worker", lab.workers[0])):
        dirs = sorted({os.path.dirname(p) for p in paths_of(c)(node)})
        missing_dirs[role] = lab.sh(node, 'for d; do [ -d "$d" ] || echo "$d"; done', *dirs).split()
    say(f"N={n}: bootstrap apply (russh; waits for the workers' leases)")
    boot = os.path.join(c.work, "bootstrap.json")
    with open(boot, "w") as out:
        measure(c, "bootstrap", [c.clusterctl, "apply", "-i", lab.inventory, "--transport", "russh",
                                 "--forks", "64", "--wait", "600", "--output", "json"], stdout=out)
    with open(boot) as f:
        c.manifest = manifest_from(c, json.load(f))
    for role, dirs in missing_dirs.items():
        c.manifest[role]["dirs"] = dirs
    c.manifest_path = os.path.join(c.work, "manifest.json")
    with open(c.manifest_path, "w") as f:
        json.dump(c.manifest, f, indent=1)
    c.reference = lab.snapshot(paths_of(c))
    merge_blocks(c, original)
    for node in lab.nodes:  # whole files: the very bytes render gives
        for f in c.manifest[role_of(node)]["files"]:
            if not f["block"]:
                with open(os.path.join(c.render, node) + f["path"], "rb") as src:
                    sha = hashlib.sha256(src.read()).hexdigest()
                assert c.reference[node][f["path"]].startswith(sha), (node, f["path"])
    # The bench's session_if, then clusterctl's own handler functions
    # (ifup_safe, nft_load, …): the commands in the report call them.
    with open(os.path.join(HERE, "prelude.sh")) as f:
        prelude = f.read()
    with open(os.path.join(HERE, "..", "src", "engine", "handlers.sh")) as f:
        prelude += f.read()
    c.prelude_path = os.path.join(c.work, "prelude.sh")
    with open(c.prelude_path, "w") as f:
        f.write(prelude)
    c.ansible_inventory = os.path.join(c.work, "ansible-inventory.ini")
    with open(c.ansible_inventory, "w") as f:
        f.write("[head]\nhead\n[workers]\n" + "\n".join(lab.workers) + "\n")
    c.ansible_vars = os.path.join(c.work, "ansible-vars.json")
    c.ansible_vars_alt = os.path.join(c.work, "ansible-vars-alt.json")
    for path, rdir in ((c.ansible_vars, c.render), (c.ansible_vars_alt, c.render_alt)):
        with open(path, "w") as f:
            json.dump({"manifest": c.manifest, "render_dir": rdir, "prelude": prelude}, f)
    pyinfra_ssh_files(c)
    with open(os.path.join(lab.dir, "ssh_config")) as f:
        cfg = f.read()
    c.c25519_ssh_config = os.path.join(c.work, "ssh_config-c25519")
    with open(c.c25519_ssh_config, "w") as f:
        f.write("KexAlgorithms curve25519-sha256\n" + cfg)
    c.mux_dir = os.path.join(c.work, "mux")
    os.makedirs(c.mux_dir, exist_ok=True)


def merge_blocks(c, original):
    """pyinfra's block files, whole: the node's /etc/hosts as lab up left it
    with clusterctl's block appended (as clusterctl merges it); the other
    block files (the head's ClusterShell groups and genders) do not exist
    on a fresh lab host, so they are the block alone."""
    c.merged, c.merged_alt = os.path.join(c.work, "merged"), os.path.join(c.work, "merged-alt")
    for node in c.lab.nodes:
        for f in c.manifest[role_of(node)]["files"]:
            if not f["block"]:
                continue
            before = original[node] if f["path"] == "/etc/hosts" else ""
            for out, rdir in ((c.merged, c.render), (c.merged_alt, c.render_alt)):
                os.makedirs(os.path.dirname(out + "/" + node + f["path"]), exist_ok=True)
                with open(rdir + "/" + node + f["path"]) as b, open(out + "/" + node + f["path"], "w") as o:
                    o.write(before + b.read())


def pyinfra_ssh_files(c):
    """The lab's ssh_config and known_hosts for pyinfra, with one addition:
    pyinfra 3.10 passes a ProxyJump hop's `Port 22` to paramiko as the string
    "22", so paramiko looks the hop's key up as "[ADDR]:22"; the same keys
    under that name too (still strict)."""
    lab = c.lab.dir
    with open(os.path.join(lab, "known_hosts")) as f:
        lines = f.read().splitlines()
    extra = []
    for line in lines:
        names, key = line.split(" ", 1)
        extra += [f"[{name}]:22 {key}" for name in names.split(",")]
    known = os.path.join(c.work, "pyinfra_known_hosts")
    with open(known, "w") as f:
        f.write("\n".join(lines + extra) + "\n")
    with open(os.path.join(lab, "ssh_config")) as f:
        cfg = f.read()
    cfg, k = re.subn(r"(?m)^  UserKnownHostsFile .*$", f"  UserKnownHostsFile {known}", cfg)
    assert k == 1, "lab ssh_config: no UserKnownHostsFile line"
    c.pyinfra_ssh_config = os.path.join(c.work, "pyinfra_ssh_config")
    with open(c.pyinfra_ssh_config, "w") as f:
        f.write(cfg)
    c.pyinfra_known_hosts = known


def round_trips(path):
    try:
        with open(path) as f:
            nodes = json.load(f)["nodes"]
        return round(sum(n["round_trips"] for n in nodes) / len(nodes), 2)
    except (OSError, ValueError, KeyError, ZeroDivisionError):
        return None


def run_tool(c, t, tool, n, rnd, emit):
    if tool.startswith("floor"):
        kind = tool.split("-")[1]
        if kind == "mux":
            subprocess.run(t.mux_open(), check=True)
        fig = measure(c, tool, t.floor(kind))
        if kind == "mux":
            subprocess.run(t.mux_close())
        if fig["rc"] != 0:
            raise SystemExit(f"N={n} round {rnd}: {tool}: an ssh failed (exit {fig['rc']}): see {c.log}")
        emit(tool, "connect", fig, None)
        return
    c.lab.reset(c.manifest)
    if c.check_resets:
        snap = c.lab.snapshot(paths_of(c))
        if snap != c.pristine:
            raise SystemExit(f"reset before {tool}: nodes are not as lab up left them")
    for mode in MODES:
        env = None
        out_path = os.path.join(c.work, "out", f"{n}-{rnd}-{tool}-{mode}.txt")
        if tool.startswith("clusterctl"):
            cmd = t.clusterctl(tool.split("-")[1], mode)
        elif tool == "pyinfra":
            cmd, env = t.pyinfra(mode), t.pyinfra_env(mode)
        else:
            run_dir = os.path.join(c.work, f"ansible-run-{n}-{rnd}-{mode}")
            os.makedirs(os.path.join(run_dir, "tmp"), exist_ok=True)
            cmd, env = t.ansible(mode), t.ansible_env(run_dir)
        with open(out_path, "w") as stdout:
            # pyinfra reports on stderr
            fig = measure(c, f"{tool} {mode}", cmd, env=env, stdout=stdout,
                          stderr=stdout if tool == "pyinfra" else None)
        ok = fig["rc"] == 0 or (mode == "diff" and tool.startswith("clusterctl") and fig["rc"] == 2)
        if not ok:
            raise SystemExit(f"N={n} round {rnd}: {tool} {mode} exited {fig['rc']}: see {out_path}, {c.log}")
        what = f"N={n} round {rnd}: {tool} {mode}"
        check_output(c, what, tool, mode, out_path)
        emit(tool, mode, fig, round_trips(out_path) if tool.startswith("clusterctl") else None)
        if c.check_every or (mode != "diff" and not tool.startswith("clusterctl")):
            check_files(c, f"after {what}")


CLUSTERCTL_STATUS = {"first": "changed", "noop": "ok", "diff": "changes"}


def check_output(c, what, tool, mode, path):
    """What each run says it did: clusterctl's report (every node changed /
    ok / has changes), the one changed value found by pyinfra's and Ansible's
    diff on every node."""
    with open(path) as f:
        text = f.read()
    if tool.startswith("clusterctl"):
        got = {n["node"]: n["status"] for n in json.loads(text)["nodes"]}
        bad = {n: s for n, s in got.items() if s != CLUSTERCTL_STATUS[mode]}
        if bad or len(got) != len(c.lab.nodes):
            raise SystemExit(f"{what}: want every node {CLUSTERCTL_STATUS[mode]}, got {dict(list(bad.items())[:5])}")
    elif mode == "diff" and tool == "pyinfra":
        seen = set(re.findall(r"(?m)^\s*\[(\S+)\]\s+Will modify /etc/clusterctl/hostfile.openmpi$", text))
        if seen != set(c.lab.nodes):
            raise SystemExit(f"{what}: hostfile.openmpi change not shown for {sorted(set(c.lab.nodes) - seen)[:5]}")
    elif mode == "diff":
        seen = set(re.findall(r"(?m)^changed: \[(\S+)\] => \(item=/etc/clusterctl/hostfile.openmpi\)", text))
        if seen != set(c.lab.nodes):
            raise SystemExit(f"{what}: hostfile.openmpi not changed on {sorted(set(c.lab.nodes) - seen)[:5]}")


def rounds_for(c, tool, n):
    return c.caps.get((tool, n), c.caps.get(("all", n), c.rounds))


def bench_size(c, n, out):
    setup(c, n)
    t = Tools(c)
    for rnd in range(1, c.rounds + 1):
        for tool in c.tools:
            if rnd > rounds_for(c, tool, n):
                continue
            say(f"N={n} round {rnd}: {tool}")

            def emit(tool, mode, fig, rt):
                rec = {"n": n, "round": rnd, "tool": tool, "mode": mode, "wall_s": fig["wall_s"],
                       "cpu_s": fig["cpu_s"], "maxrss_kib": fig["maxrss_kib"],
                       "round_trips_per_node": rt,
                       "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
                out.write(json.dumps(rec) + "\n")
                out.flush()
                say(f"  {tool} {mode}: {fig['wall_s']:.2f} s, cpu {fig['cpu_s']:.2f} s, "
                    f"{fig['maxrss_kib'] / 1024:.0f} MiB")
            run_tool(c, t, tool, n, rnd, emit)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clusterctl", required=True)
    ap.add_argument("--venv", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--sizes", default="10,50,250,1000")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cap", action="append",
                    help="TOOL:N=ROUNDS (TOOL may be `all`): fewer rounds for one cell, 0 skips it; "
                    "default: " + " ".join(DEFAULT_CAPS) + " (about an hour on 2 cores)")
    ap.add_argument("--prefix", default="bench")
    ap.add_argument("--wan", default="198.19.140.0/24")
    ap.add_argument("--lan", default="10.96.0.0/21")  # room for 1000 workers
    ap.add_argument("--tools", default=",".join(ORDER), help="a subset of " + ",".join(ORDER))
    ap.add_argument("--keep-lab", action="store_true", help="leave the last lab up (to look around)")
    ap.add_argument("--check-every", action="store_true", help="also check files after diff runs and resets")
    a = ap.parse_args()
    c = Context()
    c.clusterctl, c.venv, c.work, c.rounds = a.clusterctl, a.venv, a.work, a.rounds
    c.check_every = c.check_resets = a.check_every
    c.tools = [t for t in ORDER if t in a.tools.split(",")]
    c.caps = {}
    for cap in DEFAULT_CAPS if a.cap is None else a.cap:
        tool, rest = cap.split(":")
        size, rounds = rest.split("=")
        c.caps[(tool, int(size))] = int(rounds)
    os.makedirs(os.path.join(c.work, "out"), exist_ok=True)
    c.log = os.path.join(c.work, "bench.log")
    results = os.path.join(c.work, "results.jsonl")
    sizes = [int(s) for s in a.sizes.split(",")]
    with open(results, "w") as out:
        for n in sizes:
            c.lab = Lab(c.clusterctl, a.prefix, c.work, n, a.wan, a.lan, c.log)
            try:
                bench_size(c, n, out)
            finally:
                if not (a.keep_lab and n == sizes[-1]):
                    c.lab.down()
    table = report.table(report.load(results))
    with open(os.path.join(c.work, "table.md"), "w") as f:
        f.write(table)
    print(table)
    say(f"raw figures: {results}; log: {c.log}")


if __name__ == "__main__":
    main()
