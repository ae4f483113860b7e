# shellcheck shell=sh
# Started by renew.sh outside the SSH session that asked (engine/renew.rs):
#   sh renew_wait.sh IFACE CLIENT WANT [DHCLIENT-PID]
# Makes CLIENT ask for a lease on IFACE again. The head's dnsmasq answers a
# request for the old pool address with a NAK ("static lease available")
# and offers the reservation WANT, so the client ends up there. Waits up to
# 60 s for WANT on IFACE; if IFACE is then left with no IPv4 address at
# all, asks once more the same way.
# What it did goes to renew.log beside it.
set -u
ifc=$1 client=$2 want=$3 pid=${4:-}
here=$(dirname "$0")
log=$here/renew.log
say() { echo "$*" >>"$log"; }
holds() { # ADDRESS: IFACE has it
  ip -4 -o addr show dev "$ifc" 2>/dev/null | awk -v a="$1" '{ split($4, p, "/"); if (p[1] == a) f = 1 } END { exit !f }'
}
dhclient_on() { # the dhclient whose last argument is IFACE
  for p in $(pgrep -x dhclient 2>/dev/null); do
    if [ "$(tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | tail -n 1)" = "$ifc" ]; then
      echo "$p"; return 0
    fi
  done
}
ask() {
  case $client in
    networkmanager) nmcli --wait 45 device connect "$ifc" ;;
    # Not `networkctl renew`: networkd 252 renews by unicast from a socket
    # bound to the old address and never sees dnsmasq's broadcast NAK (seen
    # in the lab); reconfigure starts its DHCP client over (DISCOVER).
    networkd) networkctl reconfigure "$ifc" ;;
    ifupdown) ifdown "$ifc"; ifup "$ifc" ;;
    dhcpcd) dhcpcd -n "$ifc" ;;
    dhclient)
      # The same dhclient again, with the arguments it was started with:
      # it asks for its old lease first (INIT-REBOOT) and is refused.
      [ -n "$pid" ] || pid=$(dhclient_on)
      if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ]; then
        tr '\0' '\n' <"/proc/$pid/cmdline" >"$here/dhclient.argv"
        kill "$pid" 2>/dev/null
        i=0
        while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
      fi
      pid=
      [ -s "$here/dhclient.argv" ] || return 1
      set --
      while IFS= read -r a; do set -- "$@" "$a"; done <"$here/dhclient.argv"
      "$@" </dev/null >/dev/null 2>&1 &
      ;;
    *) return 1 ;;
  esac
}
sleep 3 # let the session that started this get its answer home
say "asking $client on $ifc for $want"
ask >>"$log" 2>&1 || say "$client did not take the request (status $?)"
i=0
while [ "$i" -lt 120 ]; do
  if holds "$want"; then
    say "holds $want"; exit 0
  fi
  sleep 0.5; i=$((i + 1))
done
if [ -z "$(ip -4 -o addr show dev "$ifc" 2>/dev/null)" ]; then
  say "no address on $ifc after 60 s: asking again"
  ask >>"$log" 2>&1
else
  say "does not hold $want after 60 s: $(ip -4 -o addr show dev "$ifc" | awk '{ print $4 }' | tr '\n' ' ')"
fi
exit 1
