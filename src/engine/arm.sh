# shellcheck shell=sh
# Commit-confirm's arming (engine/confirm.rs), defined inside the handler
# script's `main` before any handler runs and called as
#   arm DIR UNIT <<EOF (the revert script, base64) EOF
# Writes the revert script to DIR and starts it outside this SSH session:
# a transient systemd unit UNIT, else setsid, else nohup. It holds no
# descriptor of the session (fd 3 is the session's output). Prints @@armed,
# or @@error and returns 1 (then no handler may run).
  arm() {
    if ! { mkdir -p "$1" && chmod 0700 "$1" && base64 -d >"$1/revert.sh"; } || ! : >"$1/armed"; then
      echo "@@error cannot arm the revert in $1; no handler was run"; return 1
    fi
    if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1 &&
       systemd-run --quiet --collect --property=KillMode=process --unit="$2" sh "$1/revert.sh" >/dev/null 2>&1; then :
    elif command -v setsid >/dev/null 2>&1; then
      (trap - HUP INT TERM; setsid sh "$1/revert.sh" </dev/null >/dev/null 2>&1 3>&- &)
    else
      (trap - INT TERM; nohup sh "$1/revert.sh" </dev/null >/dev/null 2>&1 3>&- &)
    fi
    echo "@@armed"
  }
