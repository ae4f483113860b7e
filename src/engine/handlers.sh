# The handler round trip's functions. Sent after quoted assignments of
# `session_if` (the interface carrying this SSH session: empty when not over
# SSH, `?` when unknown) and `pf` (the owed-handlers file), and followed by a
# generated `main` that runs each handler function hN through `run`, then
# `main 3>&1` on the last line. Output: @@ok, @@failed (with @@| detail),
# @@note, @@done (engine/handlers.rs).
# shellcheck shell=sh
# shellcheck disable=SC2154 # session_if is assigned before this text
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
skip_session() { # IFACE WHAT [WHAT_UNKNOWN]: true (with a note) when IFACE must not be touched
  if [ "$1" = "$session_if" ]; then
    echo "@@note $1 carries this SSH session: $2" >&3
    return 0
  fi
  if [ "$session_if" = "?" ]; then
    echo "@@note cannot tell which interface carries this SSH session: ${3:-$2}" >&3
    return 0
  fi
  return 1
}
ifup_safe() { # IFACE: never take down the interface carrying this session
  skip_session "$1" "not restarted; its new settings take effect at its next ifup or boot" \
    "$1 not restarted; its new settings take effect at its next ifup or boot" && return 0
  ifdown --force -- "$1" >/dev/null 2>&1 || true
  ifup -- "$1"
}
nm_up_safe() { # IFACE FILE PROFILE: NetworkManager reads the keyfile, then activates it
  nmcli connection load "$2" || return 1
  skip_session "$1" "profile $3 loaded, not activated; it takes effect at the next activation or boot" && return 0
  nmcli -w 30 connection up id "$3" ifname "$1" >/dev/null
}
networkd_up_safe() { # IFACE: networkd re-reads its files and reconfigures IFACE
  skip_session "$1" "networkd not reloaded; its new settings take effect at the next boot" && return 0
  networkctl reload && networkctl reconfigure "$1"
}
netplan_apply_safe() { # IFACE: netplan renders and applies
  skip_session "$1" "netplan generated, not applied; its new settings take effect at the next boot" && { netplan generate; return; }
  netplan apply
}
nft_load() { # FILE: clusterctl's ruleset (without the file, as after a revert of its creation, its tables go)
  if [ -f "$1" ]; then nft -f "$1"; else nft_drop_own; fi
}
nft_drop_own() { # clusterctl's nftables table, left by an earlier backend
  command -v nft >/dev/null 2>&1 || return 0
  nft delete table ip clusterctl >/dev/null 2>&1
  return 0
}
