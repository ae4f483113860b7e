# The facts probe: one round trip. Sent after quoted assignments of
# `tools` (commands to look for), `pkgs` (packages to ask the package
# manager about), `owed_file` and `users_file`, and `set --` with the
# managed paths to read. Prints the `@@key value` line protocol that
# facts/mod.rs parses: one `@@file PATH MODE OWNER GROUP SIZE` line per
# regular file, then all their contents, concatenated in that order, base64
# between @@content and @@end.
#
# Every command started costs a node 1-5 ms of CPU, and an apply of 250
# nodes runs this 250 times on machines that may share their cores: shell
# builtins (read, case, parameter expansion) do the parsing; what is left
# to parse is printed raw for facts/mod.rs. About a dozen commands in all.
#
# One brace group, read whole before it runs, stdin /dev/null: no command
# can read the rest of the script from sh's stdin (verify/node.sh once lost
# its tail that way).
# shellcheck shell=sh
# shellcheck disable=SC2154 # tools, pkgs and owed_file are assigned before this text
{
set -u
LC_ALL=C; export LC_ALL
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH
# shellcheck source=/dev/null # the node's own file
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
h=; read -r h 2>/dev/null </proc/sys/kernel/hostname
echo "@@hostname $h"
# Which machine this is (engine/machines.rs), with builtins only.
b=; m=; k=
read -r b 2>/dev/null </proc/sys/kernel/random/boot_id
read -r m 2>/dev/null </etc/machine-id
read -r k 2>/dev/null </etc/ssh/ssh_host_ed25519_key.pub
k=${k#* }; k=${k%% *}
echo "@@machine $b $m $k"
if [ -r /sys/devices/system/cpu/online ]; then
  read -r c </sys/devices/system/cpu/online; echo "@@cpus-online $c"
else echo "@@cpus $(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 0)"; fi
while read -r k v _; do
  [ "$k" = MemTotal: ] && echo "@@mem $v" && break
done </proc/meminfo
if command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then
  echo "@@pkgmgr apt"
  # shellcheck disable=SC2086
  dpkg-query -W -f='@@dpkg ${Package} ${Status}\n' $pkgs 2>/dev/null
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
  r=$(ip -o route get "$c" 2>/dev/null)
  case "$r" in
    *" dev "*) si=${r#* dev }; si=${si%% *} ;;
    *) si= ;;
  esac
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
resolvers() {
  while read -r k v rest; do
    # shellcheck disable=SC2015 # either test failing means: not this line
    [ "$k" = nameserver ] && [ -z "$rest" ] || continue
    case "$v" in ''|*[!0-9.]*) ;; *) echo "$v" ;; esac
  done <"$1"
}
rf=/etc/resolv.conf
if [ -r "$rf" ]; then
  ns=$(resolvers "$rf")
  case "
$ns
" in *"
127.0.0.53
"*) [ -f /run/systemd/resolve/resolv.conf ] && ns=$(resolvers /run/systemd/resolve/resolv.conf) ;; esac
  for v in $ns; do echo "@@resolver $v"; done
fi
for d in /sys/class/net/*; do
  [ -e "$d/address" ] && read -r a <"$d/address" && echo "@@iface ${d##*/} $a"
done
# The network stack: which managers run, and what each one's files say
# about which interface (@@netconf KIND IFACE METHOD FILE; facts/netstack.rs
# decides). clusterctl's own files (name contains clusterctl) are left out.
# The time daemons are there for catalog/time.rs (never two keeping time).
units="NetworkManager systemd-networkd systemd-resolved firewalld nftables systemd-timesyncd ntp ntpd ntpsec openntpd"
if [ -d /run/systemd/system ]; then
  # One systemctl for all of them: a block of properties per unit. The states
  # `systemctl is-enabled` calls enabled (exit 0) count as enabled.
  # shellcheck disable=SC2086 # $units is a list of unit names, one word each
  systemctl show -p Id -p ActiveState -p UnitFileState $units 2>/dev/null | {
    u=; a=; e=
    unit() {
      [ -n "$u" ] || return 0
      [ "$a" = active ] && echo "@@active $u"
      case "$e" in
        enabled|enabled-runtime|static|alias|indirect|generated|transient) echo "@@enabled $u" ;;
      esac
      u=; a=; e=
    }
    while IFS= read -r l; do
      case "$l" in
        '') unit ;;
        Id=*) u=${l#Id=}; u=${u%.service} ;;
        ActiveState=*) a=${l#ActiveState=} ;;
        UnitFileState=*) e=${l#UnitFileState=} ;;
      esac
    done
    unit
  }
elif command -v rc-service >/dev/null 2>&1; then
  for u in $units; do
    rc-service --exists "$u" 2>/dev/null && rc-service "$u" status >/dev/null 2>&1 && echo "@@active $u"
  done
fi
if command -v ifup >/dev/null 2>&1; then
  case "$(ifup --version 2>&1)" in
    *ifupdown-ng*) echo "@@ifupdown ng" ;; *) echo "@@ifupdown classic" ;;
  esac
fi
if command -v cloud-init >/dev/null 2>&1 && [ ! -e /etc/cloud/cloud-init.disabled ]; then
  if grep -qsE '^[[:space:]]*network:[[:space:]]*\{[[:space:]]*config:[[:space:]]*disabled' /etc/cloud/cloud.cfg /etc/cloud/cloud.cfg.d/*.cfg; then
    echo "@@cloud-init network-disabled"
  else echo "@@cloud-init network"; fi
fi
[ -L /etc/resolv.conf ] && echo "@@resolv-link $(readlink /etc/resolv.conf)"
# awk PROGRAM FILE... over the regular files not clusterctl's own, one awk
# for all of them (FNR == 1 starts a file).
conf_awk() {
  prog=$1; shift
  for f in "$@"; do
    shift
    case "$f" in *clusterctl*) continue ;; esac
    [ -f "$f" ] && set -- "$@" "$f"
  done
  [ $# -eq 0 ] || awk "$prog" "$@"
}
conf_awk '$1 == "iface" && $2 != "lo" && $3 == "inet" { print "@@netconf ifupdown " $2 " " ($4 == "dhcp" ? "dhcp" : "static") " " FILENAME }' \
  /etc/network/interfaces /etc/network/interfaces.d/*
conf_awk '
  function out() { if (i != "") print "@@netconf nm " i " " (m == "auto" || m == "" ? "dhcp" : "static") " " f; sec = ""; i = ""; m = "" }
  FNR == 1 { out(); f = FILENAME }
  /^\[/ { sec = $0 } /^interface-name=/ { i = substr($0, 16) }
  sec == "[ipv4]" && /^method=/ { m = substr($0, 8) }
  END { out() }' /etc/NetworkManager/system-connections/*
conf_awk '
  function out() { if (n != "") { k = split(n, a, " "); for (j = 1; j <= k; j++) print "@@netconf networkd " a[j] " " (d ? "dhcp" : "static") " " f }; n = ""; d = 0 }
  FNR == 1 { out(); f = FILENAME }
  /^Name=/ { n = substr($0, 6) } /^DHCP=(yes|ipv4|true)/ { d = 1 }
  END { out() }' /etc/systemd/network/*.network /run/systemd/network/*.network
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
    n=$("iptables-$v-save" 2>/dev/null | {
      n=0
      while read -r l; do case "$l" in -A*) n=$((n + 1)) ;; esac; done
      echo "$n"
    })
    echo "@@iptables-rules $v $n"
  fi
done
if command -v nft >/dev/null 2>&1; then
  nft list tables 2>/dev/null | while read -r t fam name rest; do
    # shellcheck disable=SC2015 # either test failing means: not this line
    [ "$t" = table ] && [ -z "$rest" ] || continue
    case "$fam" in '' | *[!a-z0-9]*) continue ;; esac
    case "$name" in '' | *[!A-Za-z0-9_-]*) continue ;; esac
    echo "@@nft-table $fam $name"
  done
fi
# Accounts (cluster users): facts/accounts.sh, sent before this text.
probe_accounts
# The managed files: which are missing or not regular, then one stat and
# one cat for all the regular ones.
for p in "$@"; do
  shift
  if [ -f "$p" ]; then set -- "$@" "$p"
  elif [ -e "$p" ]; then echo "@@notfile $p"
  else echo "@@missing $p"; fi
done
if [ $# -gt 0 ]; then
  stat -L -c '@@file %n %a %U %G %s' -- "$@"
  echo @@content
  cat -- "$@" | base64
  echo @@end
fi
echo @@done
} </dev/null
