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
