#!/usr/bin/env bash
# The full test suite: the command the README gives and CI runs.
# As root it first installs the Debian packages the tests use, then runs every
# test including the ones that need root (the lab, iptables-restore --test).
# A user with sudo is asked for it; without sudo (or with CLUSTERCTL_NO_SUDO
# set) the tests that need root are reported as "ignored" with their reason.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ]; then
  scripts/install-deps.sh
  exec cargo test --locked --all-targets -- --include-ignored
elif command -v sudo >/dev/null 2>&1 && [ -z "${CLUSTERCTL_NO_SUDO:-}" ]; then
  # A user with sudo: the whole suite as root, with the user's cargo.
  exec sudo env "PATH=$PATH" "RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup}" \
    "CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}" "$0" "$@"
else
  echo "test.sh: not root and no sudo (or CLUSTERCTL_NO_SUDO set); tests that need root are reported as ignored" >&2
  exec cargo test --locked --all-targets
fi
