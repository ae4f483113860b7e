# The node's apply lock, shared by the write and handler round trips and
# the revert: one apply at a time on a node. Needs `lk` (the lock
# directory), `run` (this run's id), `lease` (seconds the lock is held at
# most if this run dies: a dead run's lock expires) and `me` (the inventory
# node this run reached here). The lock's `owner` is `RUN UNTIL` (as older
# clusterctl reads it) and its `node` the inventory node; the claim beside
# the lock (`RUN NODE`, kept after unlock) tells a second inventory node of
# the same run that reaches this same machine: it is refused with
# @@samemachine, before any change.
# shellcheck shell=sh
# shellcheck disable=SC2154 # lk, run, lease and me are assigned before this text
# shellcheck disable=SC2034 # fail is read by the generated main
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
    elif [ "$now" -lt "$o_until" ]; then
      echo "@@locked $o_run $((o_until - now))"; fail=1; return 1
    else
      echo "@@note took over the apply lock of run $o_run, which expired"
    fi
  fi
  if ! printf '%s\n' "$me" >"$lk/node" ||
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
