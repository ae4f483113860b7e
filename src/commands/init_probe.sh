# shellcheck shell=sh
# `init`'s look at the head (commands/init_probe.rs), read-only: its links,
# IPv4 addresses, default route and resolvers, as raw sections after the
# @@addr, @@route and @@resolv lines. Nothing is changed on the head.
LC_ALL=C; export LC_ALL
ip -o link show
echo @@addr
ip -o -4 addr show
echo @@route
ip route show default
echo @@resolv
cat /etc/resolv.conf 2>/dev/null
exit 0
