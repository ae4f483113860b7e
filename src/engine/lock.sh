# The node's apply lock, shared by the write and handler round trips and
# the revert: one apply at a time on a node. Needs `lk` (the lock
# directory), `run` (this run's id), `lease` (seconds an older clusterctl
# waits for a run that died) and `me` (the inventory node this run reached
# here). The lock's `owner` is `RUN UNTIL` (as older clusterctl reads it)
# and its `node` the inventory node. `alive` says who holds it now, one line
# per holder process of the run: `PID START GRACE` (the process, its start
# time, so a reused PID is not taken for it, and until when the lock stays
# held after it ends, to bridge the gap to the run's next round trip). The
# lock is held while any holder runs or any grace lasts: a run whose
# controller died is taken over 30 s after its last round trip ended (its
# armed revert, a holder too, keeps it until it has fired). The claim beside
# the lock (`RUN NODE`, kept after unlock) tells a second inventory node of
# the same run that reaches this same machine: it is refused with
# @@samemachine, before any change.
# shellcheck shell=sh
# shellcheck disable=SC2154 # lk, run, lease and me are assigned before this text
# shellcheck disable=SC2034 # fail is read by the generated main
started() { # PID: when it started (clock ticks after boot); nothing when it is gone
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  # shellcheck disable=SC2086 # split the fields after the command name
  set -- ${st##*) }
  [ "$#" -ge 20 ] && shift 19 && echo "$1"
}
holding() { # 0 when a holder in $lk/alive still runs or its grace lasts; sets wait_s
  wait_s=0; h=1
  while read -r a_pid a_start a_grace _; do
    case $a_pid in ''|*[!0-9]*) continue ;; esac
    if [ -n "$a_start" ] && [ "$(started "$a_pid")" = "$a_start" ]; then wait_s=running; return 0; fi
    case $a_grace in ''|*[!0-9]*) continue ;; esac
    if [ "$now" -lt "$a_grace" ]; then
      h=0; [ "$wait_s" = running ] || [ $((a_grace - now)) -le "$wait_s" ] || wait_s=$((a_grace - now))
    fi
  done <"$lk/alive"
  return "$h"
}
hold() { # SECONDS: this process holds the lock, and SECONDS after it ends
  now=$(date +%s)
  { awk -v p="$$" '$1 != p' "$lk/alive" 2>/dev/null
    printf '%s %s %s\n' "$$" "$(started "$$")" "$((now + $1))"; } >"$lk/alive.new" &&
    mv -f "$lk/alive.new" "$lk/alive"
}
lock() { # one apply at a time on this node; a dead run's lock expires
  now=$(date +%s)
  mkdir -p "${lk%/*}" 2>/dev/null
  cl="${lk%/*}/claim"
  if read -r c_run c_node _ <"$cl" 2>/dev/null && [ "$c_run" = "$run" ] && [ "$c_node" != "$me" ]; then
    echo "@@samemachine $c_node"; fail=1; return 1
  fi
  if mkdir "$lk" 2>/dev/null; then :
  elif [ ! -d "$lk" ]; then
    echo "@@error $lk: cannot create the apply lock"; fail=1; return 1
  else
    # No owner yet: being taken right now, or left by a run that died at
    # once (then it is stale after a minute).
    owner=$(cat "$lk/owner" 2>/dev/null) ||
      if [ -n "$(find "$lk" -maxdepth 0 -mmin +1 2>/dev/null)" ]; then owner="? 0"; else owner="? $((now + 60))"; fi
    o_run=${owner% *}; o_until=${owner##* }
    case $o_until in ''|*[!0-9]*) o_until=0 ;; esac
    o_node=; read -r o_node <"$lk/node" 2>/dev/null || :
    if [ "$o_run" = "$run" ]; then
      if [ -n "$o_node" ] && [ "$o_node" != "$me" ]; then
        echo "@@samemachine $o_node"; fail=1; return 1
      fi
    elif [ -r "$lk/alive" ]; then
      if holding; then echo "@@locked $o_run $wait_s"; fail=1; return 1; fi
      echo "@@note took over the apply lock of run $o_run: none of its processes runs here any more"
      rm -f "$lk/alive"
    elif [ "$now" -lt "$o_until" ]; then
      echo "@@locked $o_run $((o_until - now))"; fail=1; return 1
    else
      echo "@@note took over the apply lock of run $o_run, which expired"
    fi
  fi
  if [ "$(cut -d' ' -f1 "$lk/owner" 2>/dev/null)" != "$run" ]; then rm -f "$lk/alive"; fi
  if ! hold 30 || ! printf '%s\n' "$me" >"$lk/node" ||
    ! printf '%s %s\n' "$run" "$((now + lease))" >"$lk/owner" ||
    ! printf '%s %s\n' "$run" "$me" >"$cl"; then
    echo "@@error $lk: cannot take the apply lock"; fail=1; return 1
  fi
}
unlock() { # only our own lock (this run, this node)
  [ "$(cut -d' ' -f1 "$lk/owner" 2>/dev/null)" = "$run" ] || return 0
  o_node=; read -r o_node <"$lk/node" 2>/dev/null || :
  [ "${o_node:-$me}" = "$me" ] && rm -rf "$lk"
  return 0
}
