# shellcheck shell=sh
# Commit-confirm's confirmation (engine/confirm.rs), sent over a fresh
# connection after quoted assignments of d (the run's confirm directory)
# and lk, run, lease, and lock.sh: disarm and release the lock, or say what
# the revert did. Output: @@disarmed, @@reverted TIME, @@firing or @@unknown.
# shellcheck disable=SC2154 # d is assigned before this text
if rm "$d/armed" 2>/dev/null; then rm -f "$d/revert.sh"; rmdir "$d" 2>/dev/null; unlock; echo @@disarmed
elif [ -e "$d/reverted" ]; then echo "@@reverted $(cat "$d/reverted")"
elif [ -e "$d/firing" ]; then echo @@firing
else echo @@unknown; fi
