# shellcheck shell=sh
# The round trip before planning (engine/keys.rs): one per node. Sent after
# quoted assignments of k (the cluster key's private half), ck (1: the
# inventory has a cluster key), head (the head's name on the head, empty
# elsewhere), generate (1: make the head's missing keys), slurm (1: Slurm is
# on), mk (the munge key clusterctl keeps on the head) and hw (the head's
# record of the hardware slurm.conf lists). Output: @@hostkey (the node's
# ed25519 host key); on the head @@public and @@private (base64 up to @@end)
# with ck, @@munge (base64 up to @@end) and the record's lines as @@known
# with slurm; with slurm the node's hardware: @@cpu PACKAGE CORE (each
# online processor), @@memkb, @@cgroup (yes: pure cgroup v2, systemd, no
# container); @@error, @@done.
# shellcheck disable=SC2154 # k, ck, head, generate, slurm, mk and hw are assigned before this text
set -u
host_key=/etc/ssh/ssh_host_ed25519_key.pub
if [ -f "$host_key" ]; then echo "@@hostkey $(cut -d' ' -f1,2 "$host_key")"; fi
if [ -n "$head" ] && [ "$ck" = 1 ]; then
  if [ "$generate" = 1 ] && [ ! -f "$k" ]; then
    mkdir -p /root/.ssh && chmod 0700 /root/.ssh &&
    ssh-keygen -q -t ed25519 -N '' -C "clusterctl@$head" -f "$k" </dev/null >/dev/null ||
    echo '@@error cannot generate the cluster key (is ssh-keygen installed?)'
  fi
  if [ -f "$k" ] && [ -f "$k.pub" ]; then
    echo "@@public $(cut -d' ' -f1-3 "$k.pub")"
    echo @@private; base64 <"$k"; echo @@end
  fi
fi
if [ "$slurm" = 1 ]; then
  if [ -n "$head" ]; then
    # One munge key for the cluster, made once: 1024 characters of base64
    # (munge takes any bytes; text travels as a managed file). `ln` makes
    # it exclusively: of two runs at once, the first key stays.
    if [ "$generate" = 1 ] && [ ! -s "$mk" ]; then
      if mkdir -p -- "${mk%/*}" && t=$(umask 077 && mktemp -- "$mk.XXXXXX") &&
        head -c 768 /dev/urandom | base64 | tr -d '\n' >"$t"; then
        ln -- "$t" "$mk" 2>/dev/null || [ -s "$mk" ] || echo '@@error cannot generate the munge key'
      else
        echo '@@error cannot generate the munge key'
      fi
      rm -f -- "${t:-}"
    fi
    if [ -s "$mk" ]; then echo @@munge; base64 <"$mk"; echo @@end; fi
    if [ -r "$hw" ]; then
      while read -r n c so co th m cg _; do
        case "$n" in '' | '#'*) continue ;; esac
        echo "@@known $n $c $so $co $th $m $cg"
      done <"$hw"
    fi
  fi
  for c in /sys/devices/system/cpu/cpu[0-9]*; do
    [ -r "$c/topology/core_id" ] || continue
    if [ -r "$c/online" ]; then read -r on <"$c/online"; [ "$on" = 1 ] || continue; fi
    read -r p <"$c/topology/physical_package_id"; read -r co <"$c/topology/core_id"
    echo "@@cpu $p $co"
  done
  while read -r key v _; do [ "$key" = MemTotal: ] && echo "@@memkb $v"; done </proc/meminfo
  cg=no
  if [ -f /sys/fs/cgroup/cgroup.controllers ] && [ -d /run/systemd/system ] && [ ! -e /run/systemd/container ] &&
    ! grep -qa container= /proc/1/environ 2>/dev/null; then cg=yes; fi
  echo "@@cgroup $cg"
fi
echo @@done
