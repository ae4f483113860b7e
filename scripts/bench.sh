#!/bin/sh
# The benchmark: clusterctl (openssh and russh transports) against the SSH
# floor, pyinfra and tuned Ansible doing the same work on the same light lab.
# See the README's "Benchmark" section and bench/driver.py.
#
#   sudo scripts/bench.sh                    # N = 10, 50, 250; 3 rounds
#   sudo scripts/bench.sh --sizes 10 --rounds 5 --cap ansible:10=1
#   sudo scripts/bench.sh --smoke            # N = 3, one round (CI)
#
# Builds clusterctl --release unless CLUSTERCTL names a binary; makes (once)
# a venv with the pinned pyinfra and ansible-core of bench/requirements.txt
# under /var/cache/clusterctl-bench (BENCH_VENV overrides). Output directory:
# BENCH_OUT, default target/bench/<UTC time>: results.jsonl (raw figures),
# table.md, bench.log. Lab prefix BENCH_PREFIX (default bench).
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "bench.sh: must run as root (the lab makes namespaces)" >&2
  exit 1
fi
if [ "${1:-}" = "--smoke" ]; then
  shift
  set -- --sizes 3 --rounds 1 --check-every "$@"
fi

if [ -z "${CLUSTERCTL:-}" ]; then
  cargo build --release --locked --quiet
  CLUSTERCTL=$PWD/target/release/clusterctl
fi

py=/usr/bin/python3
if ! "$py" -c 'import venv, ensurepip' 2>/dev/null; then
  echo "bench.sh: installing python3-venv" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null
fi
req=bench/requirements.txt
venv=${BENCH_VENV:-/var/cache/clusterctl-bench/venv-$(sha256sum "$req" | cut -c1-12)}
if [ ! -x "$venv/bin/ansible-playbook" ] || [ ! -x "$venv/bin/pyinfra" ]; then
  echo "bench.sh: making $venv (pyinfra, ansible-core from PyPI)" >&2
  mkdir -p "$(dirname "$venv")"
  # made in place (a venv's scripts name their interpreter by absolute
  # path); complete only once both tools are there, checked above
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
fi

out=${BENCH_OUT:-$PWD/target/bench/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r)"
  echo "tools: $("$CLUSTERCTL" --version), $(ssh -V 2>&1), pyinfra $("$venv/bin/pyinfra" --version 2>&1 | awk '{ print $NF }'), $("$venv/bin/ansible-playbook" --version 2>/dev/null | sed -n 1p)"
  echo "command: scripts/bench.sh $*"
} >"$out/header.txt"
cat "$out/header.txt"
"$py" bench/driver.py --clusterctl "$CLUSTERCTL" --venv "$venv" --work "$out" \
  --prefix "${BENCH_PREFIX:-bench}" "$@"
