# shellcheck shell=sh
# remove-node's last step (engine/lease.rs), on the head: dnsmasq forgets
# the removed worker's lease. dnsmasq keeps leases in memory and rewrites
# its file, so: stop, drop the lines, start. Sent after quoted assignments
# of ip, mac (may be empty) and init (the head's init system as the facts
# probe saw it: systemd, openrc, sysvinit or unknown). Output: @@forgot when
# a lease was dropped; exit status non-zero (with the reason on stderr) when
# dnsmasq could not be stopped or started or the file not rewritten.
# shellcheck disable=SC2154 # ip, mac and init are assigned before this text
set -u
f=/var/lib/misc/dnsmasq.leases
[ -f "$f" ] || exit 0
awk -v ip="$ip" -v mac="$mac" '$3 == ip || (mac != "" && $2 == mac) { found = 1 } END { exit !found }' "$f" || exit 0
svc() { # ACTION: dnsmasq through the head's init system
  case $init in
    systemd) systemctl "$1" dnsmasq ;;
    openrc) rc-service dnsmasq "$1" ;;
    *) service dnsmasq "$1" ;;
  esac
}
svc stop || exit 1
awk -v ip="$ip" -v mac="$mac" '!($3 == ip || (mac != "" && $2 == mac))' "$f" >"$f.clusterctl" && mv -f "$f.clusterctl" "$f"
rc=$?
svc start || exit 1
[ "$rc" -eq 0 ] && echo @@forgot
exit "$rc"
