# shellcheck shell=sh
# remove-node's last step (engine/lease.rs), on the head: dnsmasq forgets
# the removed worker's lease. dnsmasq keeps leases in memory and rewrites
# its file, so: stop, drop the lines, start. Sent after quoted assignments
# of ip and mac (may be empty). Output: @@forgot when a lease was dropped;
# exit status non-zero (with the reason on stderr) when dnsmasq could not be
# stopped or started or the file not rewritten.
# shellcheck disable=SC2154 # ip and mac are assigned before this text
set -u
f=/var/lib/misc/dnsmasq.leases
[ -f "$f" ] || exit 0
awk -v ip="$ip" -v mac="$mac" '$3 == ip || (mac != "" && $2 == mac) { found = 1 } END { exit !found }' "$f" || exit 0
svc() { # ACTION: dnsmasq through the node's init system
  if [ -d /run/systemd/system ]; then systemctl "$1" dnsmasq
  elif command -v rc-service >/dev/null 2>&1; then rc-service dnsmasq "$1"
  else service dnsmasq "$1"; fi
}
svc stop || exit 1
awk -v ip="$ip" -v mac="$mac" '!($3 == ip || (mac != "" && $2 == mac))' "$f" >"$f.clusterctl" && mv -f "$f.clusterctl" "$f"
rc=$?
svc start || exit 1
[ "$rc" -eq 0 ] && echo @@forgot
exit "$rc"
