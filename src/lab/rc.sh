# shellcheck shell=sh
# The boot script of a light lab host (lab/host.rs), run once by its PID 1
# like /etc/rc.local. There is no systemd: services are sysvinit scripts
# started with `service`. Written after `#!/bin/sh`, a comment naming the
# host, quoted assignments of role (wan, head or worker) and gateway (the
# default route, may be empty), and `set --` with each interface and its
# static address (empty: none), in pairs.
# shellcheck disable=SC2154 # role and gateway are assigned before this text
ip link set lo up
while [ "$#" -ge 2 ]; do
  ip link set "$1" up
  if [ -n "$2" ]; then ip addr add "$2" dev "$1"; fi
  shift 2
done
if [ -n "$gateway" ]; then ip route add default via "$gateway"; fi
service ssh start
case $role in
  wan)
    # The internet's DNS, as the cluster sees it (the inventory's upstream_dns).
    service dnsmasq start
    ;;
  worker)
    # Like a fresh install: ask for an address until a DHCP server answers.
    dhclient -4 -nw -v -pf /run/dhclient.eth0.pid -lf /var/lib/dhcp/dhclient.eth0.leases eth0
    ;;
esac
# sshd writes its pid file once it listens.
i=0
while [ ! -s /run/sshd.pid ] && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i+1)); done
[ -s /run/sshd.pid ]
