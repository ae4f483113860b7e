# The facts probe: one round trip. Sent after quoted assignments of
# `tools` (commands to look for), `pkgs` (packages to ask the package
# manager about) and `owed_file`, and `set --` with the
# managed paths to read. Prints the `@@key value` line protocol that
# facts/mod.rs parses; file contents are base64 between @@file and @@end.
set -u
LC_ALL=C; export LC_ALL
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH
( . /etc/os-release 2>/dev/null; echo "@@os ${ID:-unknown} ${VERSION_ID:-}" )
if [ -d /run/systemd/system ]; then i=systemd
elif [ -d /run/openrc ] || command -v openrc-run >/dev/null 2>&1; then i=openrc
elif [ -d /etc/init.d ]; then i=sysvinit
else i=unknown; fi
echo "@@init $i"
if command -v iptables >/dev/null 2>&1; then
  case "$(iptables --version 2>/dev/null)" in
    *nf_tables*) b=nf_tables ;; *legacy*) b=legacy ;; *) b=unknown ;;
  esac
else b=none; fi
echo "@@iptables $b"
if command -v nft >/dev/null 2>&1; then echo "@@nft yes"; else echo "@@nft no"; fi
echo "@@hostname $(hostname 2>/dev/null || cat /proc/sys/kernel/hostname)"
echo "@@cpus $(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 0)"
echo "@@mem $(awk '/^MemTotal:/ {print $2}' /proc/meminfo 2>/dev/null)"
if command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then
  echo "@@pkgmgr apt"
  # shellcheck disable=SC2086
  dpkg-query -W -f='${Package} ${Status}\n' $pkgs 2>/dev/null | awk '$4 == "installed" { print "@@pkg " $1 }'
elif command -v dnf >/dev/null 2>&1 && command -v rpm >/dev/null 2>&1; then
  echo "@@pkgmgr dnf"
  for p in $pkgs; do rpm -q "$p" >/dev/null 2>&1 && echo "@@pkg $p"; done
elif command -v apk >/dev/null 2>&1; then
  echo "@@pkgmgr apk"
  for p in $pkgs; do apk info -e "$p" >/dev/null 2>&1 && echo "@@pkg $p"; done
else
  echo "@@pkgmgr unknown"
fi
for t in $tools; do
  command -v "$t" >/dev/null 2>&1 && echo "@@tool $t"
done
c=${CLUSTERCTL_SSH_CLIENT:-${SSH_CLIENT:-}}; c=${c%% *}
if [ -n "$c" ]; then
  echo "@@session-client $c"
  si=$(ip -o route get "$c" 2>/dev/null | sed -n 's/.* dev \([^ ]*\).*/\1/p')
  echo "@@session-if ${si:-?}"
fi
ip -o -4 addr show 2>/dev/null | while read -r _ ifc _ addr _; do
  echo "@@addr ${ifc%%@*} $addr"
done
if [ -f "$owed_file" ]; then
  while read -r s; do [ -n "$s" ] && echo "@@owed $s"; done < "$owed_file"
fi
# The node's own resolvers (behind a loopback stub such as systemd-resolved's
# 127.0.0.53, the ones it forwards to).
rf=/etc/resolv.conf
if grep -qs '^nameserver[[:space:]]*127\.0\.0\.53' "$rf" && [ -f /run/systemd/resolve/resolv.conf ]; then
  rf=/run/systemd/resolve/resolv.conf
fi
sed -n 's/^nameserver[[:space:]][[:space:]]*\([0-9.][0-9.]*\)[[:space:]]*$/@@resolver \1/p' "$rf" 2>/dev/null
for d in /sys/class/net/*; do
  [ -e "$d/address" ] && echo "@@iface ${d##*/} $(cat "$d/address")"
done
# The network stack: which managers run, and what each one's files say
# about which interface (@@netconf KIND IFACE METHOD FILE; facts/netstack.rs
# decides). clusterctl's own files (name contains clusterctl) are left out.
for u in NetworkManager systemd-networkd systemd-resolved firewalld nftables; do
  if [ -d /run/systemd/system ]; then
    systemctl is-active --quiet "$u" 2>/dev/null && echo "@@active $u"
    systemctl is-enabled --quiet "$u" 2>/dev/null && echo "@@enabled $u"
  elif command -v rc-service >/dev/null 2>&1; then
    rc-service --exists "$u" 2>/dev/null && rc-service "$u" status >/dev/null 2>&1 && echo "@@active $u"
  fi
done
if command -v ifup >/dev/null 2>&1; then
  case "$(ifup --version 2>&1 | head -n 1)" in
    *ifupdown-ng*) echo "@@ifupdown ng" ;; *) echo "@@ifupdown classic" ;;
  esac
fi
if command -v cloud-init >/dev/null 2>&1 && [ ! -e /etc/cloud/cloud-init.disabled ]; then
  if grep -qsE '^[[:space:]]*network:[[:space:]]*\{[[:space:]]*config:[[:space:]]*disabled' /etc/cloud/cloud.cfg /etc/cloud/cloud.cfg.d/*.cfg; then
    echo "@@cloud-init network-disabled"
  else echo "@@cloud-init network"; fi
fi
[ -L /etc/resolv.conf ] && echo "@@resolv-link $(readlink /etc/resolv.conf)"
for f in /etc/network/interfaces /etc/network/interfaces.d/*; do
  case "$f" in *clusterctl*) continue ;; esac
  [ -f "$f" ] && awk -v f="$f" '$1 == "iface" && $2 != "lo" && $3 == "inet" { print "@@netconf ifupdown " $2 " " ($4 == "dhcp" ? "dhcp" : "static") " " f }' "$f"
done
for f in /etc/NetworkManager/system-connections/*; do
  case "$f" in *clusterctl*) continue ;; esac
  [ -f "$f" ] && awk -v f="$f" '
    /^\[/ { sec = $0 } /^interface-name=/ { i = substr($0, 16) }
    sec == "[ipv4]" && /^method=/ { m = substr($0, 8) }
    END { if (i != "") print "@@netconf nm " i " " (m == "auto" || m == "" ? "dhcp" : "static") " " f }' "$f"
done
for f in /etc/systemd/network/*.network /run/systemd/network/*.network; do
  case "$f" in *clusterctl*) continue ;; esac
  [ -f "$f" ] && awk -v f="$f" '
    /^Name=/ { n = substr($0, 6) } /^DHCP=(yes|ipv4|true)/ { d = 1 }
    END { if (n != "") { split(n, a, " "); for (k in a) print "@@netconf networkd " a[k] " " (d ? "dhcp" : "static") " " f } }' "$f"
done
for f in /etc/netplan/*.yaml; do
  case "$f" in *clusterctl*) continue ;; esac
  [ -f "$f" ] || continue
  echo "@@netplan-file $f"
  awk -v f="$f" '
    /^[[:space:]]*renderer:[[:space:]]*NetworkManager/ { print "@@netplan-renderer NetworkManager" }
    /^  ethernets:/ { e = 1; next }
    e && /^  [^ ]/ { e = 0 }
    e && /^    [^ #][^ ]*:[[:space:]]*$/ { if (i != "") print "@@netconf netplan " i " " (d ? "dhcp" : "static") " " f; i = $1; sub(":", "", i); d = 0 }
    e && /dhcp4:[[:space:]]*(true|yes)/ { d = 1 }
    END { if (i != "") print "@@netconf netplan " i " " (d ? "dhcp" : "static") " " f }' "$f"
done
# The firewall: rules already loaded by each iptables variant (mixing them
# makes NAT silently do nothing).
for v in legacy nft; do
  if command -v "iptables-$v-save" >/dev/null 2>&1; then
    echo "@@iptables-rules $v $("iptables-$v-save" 2>/dev/null | grep -c '^-A')"
  fi
done
if command -v nft >/dev/null 2>&1; then
  nft list tables 2>/dev/null | sed -n 's/^table \([a-z0-9]*\) \([A-Za-z0-9_-]*\)$/@@nft-table \1 \2/p'
fi
for p in "$@"; do
  if [ -f "$p" ]; then
    echo "@@file $p $(stat -c '%a %U %G' "$p")"
    base64 < "$p"
    echo "@@end"
  elif [ -e "$p" ]; then
    echo "@@notfile $p"
  else
    echo "@@missing $p"
  fi
done
echo @@done
