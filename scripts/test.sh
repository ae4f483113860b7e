#!/usr/bin/env bash
# The full test suite: the command the README gives and CI runs.
# As root it first installs the Debian packages the tests use, then runs every
# test including the ones that need root (the lab, iptables-restore --test).
# As a normal user those are reported as "ignored" with their reason.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ]; then
  scripts/install-deps.sh
  exec cargo test --locked --all-targets -- --include-ignored
else
  echo "test.sh: not root; tests that need root are reported as ignored (run with sudo for all)" >&2
  exec cargo test --locked --all-targets
fi
