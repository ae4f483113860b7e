#!/bin/sh
# Render benchmark: time and peak memory of `clusterctl render` for
# inventories of 250, 1,000 and 4,000 workers (and any sizes given as
# arguments). Prints one line per size; speed targets live in these
# figures, never in timed tests.
#
#   scripts/bench-render.sh                 # builds --release first
#   CLUSTERCTL=path/to/clusterctl scripts/bench-render.sh 250 1000
#
# Every node's /etc/hosts and MPI hostfiles list every node, so the output
# of rendering ALL nodes grows with workers^2 (4,000 workers: about 1 GB of
# files); what must stay linear is the time per node (one node's files grow
# with the number of workers) and the time per output byte, and memory must
# not grow with the output (nodes are rendered and written one at a time).
set -eu
cd "$(dirname "$0")/.."
if [ -z "${CLUSTERCTL:-}" ]; then
  flock /tmp/clusterctl-cpu.lock cargo build --release --quiet
  CLUSTERCTL=target/release/clusterctl
fi
[ $# -gt 0 ] || set -- 250 1000 4000
work=$(mktemp -d "${TMPDIR:-/tmp}/clusterctl-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

inventory() { # N: a /16 LAN, N workers with MACs in one range entry
  n=$1
  {
    printf 'name: bench\ndomain: cluster.lan\nlan:\n  cidr: 10.20.0.0/16\n'
    printf '  dhcp_range: 10.20.250.1-10.20.250.254\n  upstream_dns: [1.1.1.1]\n'
    printf 'head:\n  name: head\n  ssh: root@192.168.1.50\n  wan_iface: eth0\n  lan_iface: eth1\n  lan_ip: 10.20.0.1\n'
    printf 'workers:\n  - names: node[00001-%05d]\n    macs:\n' "$n"
    i=1
    while [ "$i" -le "$n" ]; do
      printf '      - "02:00:00:%02x:%02x:%02x"\n' $((i / 65536 % 256)) $((i / 256 % 256)) $((i % 256))
      i=$((i + 1))
    done
    printf 'nfs:\n  exports:\n    - path: /home\n    - path: /opt/shared\n'
    printf 'mpi:\n  hostfiles: [openmpi, mpich]\n'
  } >"$work/inv-$n.yaml"
}

# seconds and peak RSS (MiB) of a command, from GNU time
measure() {
  /usr/bin/time -f '%e %M' -o "$work/time" "$@" >/dev/null 2>"$work/err" || {
    cat "$work/err" >&2
    exit 1
  }
  awk '{ printf "%8.2f s %8.1f MiB", $1, $2 / 1024 }' "$work/time"
}

printf '%8s  %-28s %-28s %10s %12s\n' workers "render --node head" "render --out (all nodes)" "output" "per node"
for n in "$@"; do
  inventory "$n"
  one=$(measure "$CLUSTERCTL" render -i "$work/inv-$n.yaml" --node head)
  rm -rf "$work/out"
  all=$(measure "$CLUSTERCTL" render -i "$work/inv-$n.yaml" --out "$work/out")
  secs=$(awk '{ print $1 }' "$work/time")
  mib=$(du -sm "$work/out" | awk '{ print $1 }')
  per=$(awk -v s="$secs" -v n="$n" 'BEGIN { printf "%.2f ms", s * 1000 / (n + 1) }')
  printf '%8s  %-28s %-28s %6s MiB %12s\n' "$n" "$one" "$all" "$mib" "$per"
  rm -rf "$work/out"
done
