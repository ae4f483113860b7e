# The handler round trip's functions. Sent after quoted assignments of
# `session_if` (the interface carrying this SSH session: empty when not over
# SSH, `?` when unknown) and `pf` (the owed-handlers file), and followed by a
# generated `main` that runs each handler function hN through `run`, then
# `main 3>&1` on the last line. Output: @@ok, @@failed (with @@| detail),
# @@note, @@done (engine/handlers.rs).
set -u
trap '' HUP PIPE INT TERM
LC_ALL=C; export LC_ALL
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH
left=""
run() { # STEP FUNCTION; daemons it starts get default signal handling
  if out=$(trap - HUP PIPE INT TERM; "$2" 2>&1); then echo "@@ok $1"; else
    echo "@@failed $1"
    printf '%s\n' "$out" | sed 's/^/@@| /'
    left="$left $1"
  fi
}
ifup_safe() { # IFACE: never take down the interface carrying this session
  if [ "$1" = "$session_if" ]; then
    echo "@@note $1 carries this SSH session: not restarted; its new settings take effect at its next ifup or boot" >&3
    return 0
  fi
  if [ "$session_if" = "?" ]; then
    echo "@@note cannot tell which interface carries this SSH session: $1 not restarted; its new settings take effect at its next ifup or boot" >&3
    return 0
  fi
  ifdown --force -- "$1" >/dev/null 2>&1 || true
  ifup -- "$1"
}
