#!/usr/bin/env bash
# The main job, end to end on the local lab (root, Linux): install the lab's
# packages, build, bring up wan + head + workers, then validate and render the
# inventory the lab wrote, and show that the controller reaches the head over SSH.
# Leaves the lab up to look around; `sudo target/debug/clusterctl lab down` removes it.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "demo.sh: the lab needs root (try: sudo $0)" >&2
  exit 1
fi

scripts/install-deps.sh
cargo build --locked
bin=target/debug/clusterctl

"$bin" lab up --workers "${WORKERS:-3}"
"$bin" check -i lab/cluster.yaml
echo "--- what the head would get:"
"$bin" render -i lab/cluster.yaml --node head
echo "--- the head over SSH, as clusterctl will reach it:"
"$bin" lab ssh head -- hostname
"$bin" lab status
echo "demo.sh: lab is up. Next: clusterctl apply (coming next); remove with: sudo $bin lab down"
