# shellcheck shell=sh
# The commit-confirm revert (engine/confirm.rs), written to the node by the
# handler round trip and started outside the SSH session. Sent after:
#   quoted assignments of d (this run's confirm directory), bk (its backup
#   directory), session_if, pf (/dev/null: nothing stays owed), lk, run and
#   lease (lock.sh), seconds (how long to wait for the confirmation);
#   `set --` with every path this run wrote;
#   handlers.sh and lock.sh;
#   a generated revert_handlers function that re-runs each handler.
# shellcheck disable=SC2154 # d, bk and seconds are assigned before this text
hold 60 # the lock stays this run's while the revert may still fire
sleep "$seconds"
mv "$d/armed" "$d/firing" 2>/dev/null || exit 0
restore() { # PATH: the backed-up file, or none if this run created it
  if [ -e "$bk$1" ]; then cp -p "$bk$1" "$1.clusterctl-revert" && mv -f "$1.clusterctl-revert" "$1";
  else rm -f "$1"; fi
}
for path in "$@"; do restore "$path"; done
revert_handlers
date -u +%Y-%m-%dT%H:%M:%SZ >"$d/reverted"
rm -f "$d/firing"
unlock
