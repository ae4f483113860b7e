"""The bench's tables from its raw figures (results.jsonl): median (min-max)
wall time per (N, tool, mode), the ratios, controller CPU and peak RSS, and
the issue's goals. `python3 bench/report.py results.jsonl` reprints them."""
import json
import statistics
import sys

TOOLS = ["clusterctl-openssh", "clusterctl-russh", "pyinfra", "ansible"]
MODES = ["first", "noop", "diff"]


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def cells(rows):
    """{(n, tool, mode): {"wall": [...], "cpu": [...], "rss": [...], "rt": [...]}}"""
    out = {}
    for r in rows:
        d = out.setdefault((r["n"], r["tool"], r["mode"]), {"wall": [], "cpu": [], "rss": [], "rt": []})
        d["wall"].append(r["wall_s"])
        d["cpu"].append(r["cpu_s"])
        d["rss"].append(r["maxrss_kib"] / 1024)
        if r.get("round_trips_per_node") is not None:
            d["rt"].append(r["round_trips_per_node"])
    return out


def med(c, key, what="wall"):
    d = c.get(key)
    return statistics.median(d[what]) if d else None


def fmt(c, key):
    d = c.get(key)
    if not d:
        return "-"
    w = d["wall"]
    if len(w) == 1:
        return f"{w[0]:.2f} (1 round)"
    return f"{statistics.median(w):.2f} ({min(w):.2f}-{max(w):.2f})"


def ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b else "-"


def table(rows):
    c = cells(rows)
    sizes = sorted({r["n"] for r in rows})
    out = ["Wall seconds, median (min-max) of the rounds; ratios of medians; floor = N+1 "
           "`ssh HOST true` at once through the head: fresh connections with OpenSSH's default key "
           "exchange (sntrup761x25519, what the openssh transport and Ansible use), fresh with "
           "curve25519-sha256 (what russh and pyinfra negotiate), and over open masters.", "",
           "| N | mode | floor fresh | floor c25519 | floor mux | clusterctl openssh | clusterctl russh "
           "| pyinfra | Ansible | openssh / floor | russh / floor | russh / floor c25519 "
           "| pyinfra / openssh | pyinfra / russh | Ansible / openssh | Ansible / russh |",
           "|" + "---|" * 16]
    for n in sizes:
        floor = med(c, (n, "floor-fresh", "connect"))
        c25519 = med(c, (n, "floor-c25519", "connect"))
        for m in MODES:
            o, r = med(c, (n, "clusterctl-openssh", m)), med(c, (n, "clusterctl-russh", m))
            p, a = med(c, (n, "pyinfra", m)), med(c, (n, "ansible", m))
            out.append(
                f"| {n} | {m} | {fmt(c, (n, 'floor-fresh', 'connect'))} "
                f"| {fmt(c, (n, 'floor-c25519', 'connect'))} | {fmt(c, (n, 'floor-mux', 'connect'))} "
                f"| {fmt(c, (n, 'clusterctl-openssh', m))} | {fmt(c, (n, 'clusterctl-russh', m))} "
                f"| {fmt(c, (n, 'pyinfra', m))} | {fmt(c, (n, 'ansible', m))} "
                f"| {ratio(o, floor)} | {ratio(r, floor)} | {ratio(r, c25519)} | {ratio(p, o)} | {ratio(p, r)} "
                f"| {ratio(a, o)} | {ratio(a, r)} |")
    out += ["", "Controller CPU seconds (user+system of the whole process tree) / peak RSS MiB of its "
            "largest process, medians; clusterctl round trips per node.", "",
            "| N | mode | floor fresh | floor c25519 | floor mux | clusterctl openssh | clusterctl russh "
            "| pyinfra | Ansible | round trips / node |", "|" + "---|" * 10]
    for n in sizes:
        for m in MODES:
            row = [str(n), m]
            floors = [(f"floor-{k}", "connect") for k in ("fresh", "c25519", "mux")]
            for tool, mode in floors + [(t, m) for t in TOOLS]:
                cpu, rss = med(c, (n, tool, mode), "cpu"), med(c, (n, tool, mode), "rss")
                row.append(f"{cpu:.2f} s / {rss:.0f}" if cpu is not None else "-")
            rt = c.get((n, "clusterctl-russh", m), {}).get("rt") or c.get((n, "clusterctl-openssh", m), {}).get("rt")
            row.append(f"{statistics.median(rt):g}" if rt else "-")
            out.append("| " + " | ".join(row) + " |")
    out += ["", "Goals (issue #14):", ""] + goals(c, sizes)
    return "\n".join(out) + "\n"


def goals(c, sizes):
    lines = []

    def check(ok, text):
        if ok is not None:
            lines.append(f"- [{'x' if ok else ' '}] {text}")

    for n in sizes:
        floor = med(c, (n, "floor-fresh", "connect"))
        for m in ("noop", "diff"):
            o, r = med(c, (n, "clusterctl-openssh", m)), med(c, (n, "clusterctl-russh", m))
            if floor and o:
                check(o <= 1.2 * floor, f"N={n} {m}: openssh within 1.2x of the fresh floor ({o / floor:.3f}x)")
            if floor and r:
                check(r < floor, f"N={n} {m}: russh below the fresh floor ({r / floor:.3f}x)")
    for m in MODES:
        p, a = med(c, (50, "pyinfra", m)), med(c, (50, "ansible", m))
        for t in ("openssh", "russh"):
            x = med(c, (50, f"clusterctl-{t}", m))
            if p and x:
                check(p >= 3 * x, f"N=50 {m}: {t} 3x faster than pyinfra ({p / x:.2f}x)")
            if a and x:
                check(a >= 20 * x, f"N=50 {m}: {t} 20x faster than Ansible ({a / x:.1f}x)")
    r = med(c, (250, "clusterctl-russh", "noop"))
    if r:
        check(r < 6, f"N=250 no-op with russh under 6 s ({r:.2f} s)")
    for t in ("clusterctl-openssh", "clusterctl-russh"):
        rss = med(c, (1000, t, "first"), "rss")
        if rss:
            check(rss < 50, f"N=1000 {t}: controller RSS under 50 MB ({rss:.0f} MiB)")
    return lines


if __name__ == "__main__":
    print(table(load(sys.argv[1])), end="")
