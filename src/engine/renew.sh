# shellcheck shell=sh
# apply moving a worker onto its reserved address (engine/renew.rs), run on
# the worker at the address it holds from the head's pool, after quoted
# assignments of held (that address), want (its reservation), dir (this
# run's directory under /var/lib/clusterctl/renew) and detached (the base64
# of renew_wait.sh). Finds the interface that holds $held and the client
# that runs DHCP on it, then starts renew_wait.sh outside this SSH session
# (as arm.sh starts a revert: a transient systemd unit, else setsid, else
# nohup), which makes that client ask again. The unit's KillMode=process:
# a DHCP client the move starts (ifup's dhclient, a restarted one) must
# outlive it. The interface must have the worker's MAC (`mac`): an address
# the inventory's worker does not hold is never moved. Output: @@renewing
# IFACE CLIENT, or @@error WHY (nothing was started).
# shellcheck disable=SC2154 # held, want, mac, dir and detached are assigned before this text
set -u
ifc=$(ip -4 -o addr show 2>/dev/null | awk -v a="$held" '{ split($4, p, "/"); if (p[1] == a) { print $2; exit } }')
if [ -z "$ifc" ]; then
  echo "@@error no interface holds $held"; exit 0
fi
have=$(cat "/sys/class/net/$ifc/address" 2>/dev/null)
if [ "$have" != "$mac" ]; then
  echo "@@error $ifc holds $held but its MAC is ${have:-unknown}, not $mac: another machine"; exit 0
fi
pid=
client=
state=$(command -v nmcli >/dev/null 2>&1 && nmcli -g GENERAL.STATE device show "$ifc" 2>/dev/null)
case $state in
  100*) client=networkmanager ;;
esac
if [ -z "$client" ] && command -v networkctl >/dev/null 2>&1 &&
   networkctl list --no-legend --no-pager 2>/dev/null | awk -v i="$ifc" '$2 == i && $5 == "configured" { f = 1 } END { exit !f }'; then
  client=networkd
fi
if [ -z "$client" ] && command -v ifquery >/dev/null 2>&1 && ifquery --state "$ifc" >/dev/null 2>&1; then
  client=ifupdown
fi
if [ -z "$client" ]; then
  for p in $(pgrep -x dhclient 2>/dev/null); do
    if [ "$(tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | tail -n 1)" = "$ifc" ]; then
      client=dhclient; pid=$p; break
    fi
  done
fi
if [ -z "$client" ] && pgrep -x dhcpcd >/dev/null 2>&1; then
  client=dhcpcd
fi
if [ -z "$client" ]; then
  echo "@@error no DHCP client that clusterctl knows (NetworkManager, systemd-networkd, ifupdown, dhclient, dhcpcd) runs on $ifc"; exit 0
fi
if ! { mkdir -p "$dir" && chmod 0700 "$dir" && printf '%s' "$detached" | base64 -d >"$dir/renew_wait.sh"; }; then
  echo "@@error cannot write $dir/renew_wait.sh"; exit 0
fi
unit="clusterctl-renew-${dir##*/}"
if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1 &&
   systemd-run --quiet --collect --property=KillMode=process --unit="$unit" sh "$dir/renew_wait.sh" "$ifc" "$client" "$want" "$pid" >/dev/null 2>&1; then :
elif command -v setsid >/dev/null 2>&1; then
  (trap - HUP INT TERM; setsid sh "$dir/renew_wait.sh" "$ifc" "$client" "$want" "$pid" </dev/null >/dev/null 2>&1 &)
else
  (trap - INT TERM; nohup sh "$dir/renew_wait.sh" "$ifc" "$client" "$want" "$pid" </dev/null >/dev/null 2>&1 &)
fi
echo "@@renewing $ifc $client"
