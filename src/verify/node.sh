# The verify round trip: every check of one node, from the node itself.
# Sent after quoted assignments of `role` (head|worker), `iface` and `addr`
# (the LAN interface and the address/prefix the inventory gives it), `gw`
# (a worker's gateway: the head), `wan_if` (the head's WAN interface),
# `dns` (the head's LAN address: DNS, NFS), `wan` and `wanport` (the WAN
# target; no port: ping), `lan` (the LAN CIDR), `names` (lines "NAME FQDN
# IP": every node), `peers` (names to reach over SSH), `mounts` (NFS mount
# points, one a line), `users` (lines "NAME UID GID": the cluster's
# users), `runas` (the first user, when host-based SSH is on: SSH and the
# MPI job run as them), `mpi` (1: run the MPI job; nokey: no cluster key),
# `hostfile`, `time` (1: chrony is clusterctl's), `ntp_src` (a worker's
# time source: the head's LAN address), `max_offset` (seconds), `slurm`
# (1: check Slurm from here; worker: from the head; 0: not configured),
# `slurm_nodes` (the default partition's nodes) and `slurm_user` (the job's
# user; empty: root). Prints
# `@@check CHECK ok|fail|skip DETAIL` lines, then @@done (verify/mod.rs).
# shellcheck shell=sh
# shellcheck disable=SC2154 # the values above are assigned before this text
set -u
LC_ALL=C; export LC_ALL
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH
# The script arrives on sh's stdin; one brace group is read whole before it
# runs, and its own stdin is /dev/null, so no command (ssh, mpirun) eats the
# script's rest. (Regression: `exec </dev/null` here cut every script longer
# than the shell's first read, about 50 nodes' names, at a syntax error.)
{
say() { printf '@@check %s %s %s\n' "$1" "$2" "$(printf '%s' "$3" | tr '\n' ' ' | cut -c1-400)"; }

# An A query straight to a DNS server with bash's /dev/udp (no dig on a
# minimal node): prints the addresses of the answer, one a line.
dnsq_prog=$(cat <<'PROG'
s=$1 n=$2
hx() { printf '\\x%02x' "$@"; }
q=$(hx $((RANDOM % 256)) $((RANDOM % 256)) 1 0 0 1 0 0 0 0 0 0)
IFS=. read -ra parts <<<"$n"
for l in "${parts[@]}"; do q+=$(hx ${#l})$l; done
q+=$(hx 0 0 1 0 1)
exec 3<>"/dev/udp/$s/53" || exit 2
printf "$q" >&3
timeout 3 dd bs=2048 count=1 <&3 2>/dev/null | od -An -v -tu1 | tr -s ' ' '\n' | grep -v '^$' | awk '
{ b[NR-1] = $1 }
END {
  if (NR < 12) exit 3
  an = b[6] * 256 + b[7]; i = 12
  while (b[i] != 0) i += b[i] + 1
  i += 5
  for (k = 0; k < an; k++) {
    if (b[i] >= 192) i += 2; else { while (b[i] != 0) i += b[i] + 1; i++ }
    t = b[i] * 256 + b[i+1]; len = b[i+8] * 256 + b[i+9]; i += 10
    if (t == 1 && len == 4) printf "%d.%d.%d.%d\n", b[i], b[i+1], b[i+2], b[i+3]
    i += len
  }
}'
PROG
)
dnsq() { # SERVER NAME: three tries, as a resolver would (UDP; a busy node)
  for _ in 1 2 3; do
    ans=$(bash -c "$dnsq_prog" dnsq "$1" "$2") && [ -n "$ans" ] && { printf '%s\n' "$ans"; return 0; }
  done
  return 1
}
# shellcheck disable=SC2016 # $1 and $2 are bash's, given as its arguments
tcp_open() { timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' tcp "$1" "$2" 2>/dev/null; }

# address: the LAN interface holds the inventory's address.
have=$(ip -4 -o addr show dev "$iface" 2>/dev/null | awk '{print $4}' | tr '\n' ' ')
case " $have" in
  *" $addr "*) say address ok "$iface $addr" ;;
  *) say address fail "$iface has ${have:-no IPv4 address}, want $addr" ;;
esac

# route: a worker's default route goes through the head; the head's out its WAN side.
r=$(ip -4 route show default 2>/dev/null | head -n 1)
via=$(printf '%s' "$r" | sed -n 's/.* via \([^ ]*\).*/\1/p')
dev=$(printf '%s' "$r" | sed -n 's/.* dev \([^ ]*\).*/\1/p')
if [ "$role" = head ]; then
  if [ "$dev" = "$wan_if" ]; then say route ok "default via ${via:-?} dev $dev"
  else say route fail "default route ${r:-missing}, want one out $wan_if"; fi
elif [ "$via" = "$gw" ]; then say route ok "default via $gw"
else say route fail "default route ${r:-missing}, want via $gw (the head)"; fi

# resolver: a worker asks the head first.
if [ "$role" = head ]; then
  say resolver skip "the head uses its own resolvers"
else
  first_ns() { sed -n 's/^nameserver[[:space:]]*\([^[:space:]]*\).*/\1/p' "$1" 2>/dev/null | head -n 1; }
  ns=$(first_ns /etc/resolv.conf) behind=
  # systemd-resolved's stub forwards to the resolvers of its own file.
  if [ "$ns" = 127.0.0.53 ] && [ -f /run/systemd/resolve/resolv.conf ]; then
    ns=$(first_ns /run/systemd/resolve/resolv.conf) behind=" behind systemd-resolved's stub"
  fi
  if [ "$ns" = "$dns" ]; then say resolver ok "nameserver $dns$behind"
  else say resolver fail "first nameserver ${ns:-none}$behind, want $dns (the head)"; fi
fi

# names: every node's name and FQDN resolve through the head's DNS, to its address.
if command -v bash >/dev/null 2>&1; then
  noans="" wrong="" n=0
  while read -r nm fq ip; do
    [ -n "$nm" ] || continue
    for q in "$fq" "$nm"; do
      n=$((n + 1))
      got=$(dnsq "$dns" "$q" 2>/dev/null | tr '\n' ' ')
      case " $got" in
        *" $ip "*) ;;
        " ") noans="$noans $q" ;;
        *) wrong="$wrong; $q -> ${got% } (want $ip)" ;;
      esac
    done
  done <<NAMES
$names
NAMES
  if [ -z "$noans$wrong" ]; then say names ok "$n names via $dns"
  else
    d=""
    [ -z "$noans" ] || d="no answer from $dns for$noans"
    [ -z "$wrong" ] || d="${d:+$d; }${wrong#; }"
    say names fail "$d"
  fi
else
  say names fail "no bash on the node for the DNS query"
fi

# wan: the outside answers (a worker's path is the head's NAT).
if [ -z "$wan" ]; then
  say wan skip "no target: pass --wan-target"
elif [ -n "$wanport" ]; then
  if tcp_open "$wan" "$wanport"; then say wan ok "tcp $wan:$wanport"
  else say wan fail "no TCP connection to $wan:$wanport"; fi
elif ping -c 1 -W 3 "$wan" >/dev/null 2>&1; then say wan ok "ping $wan"
else say wan fail "no ping reply from $wan"; fi

# nfs: each share mounted, else the server answers on 2049.
if [ -z "$mounts" ]; then
  say nfs skip "no NFS shares"
else
  bad="" notm=""
  while read -r m; do
    [ -n "$m" ] || continue
    if [ "$role" = worker ] && ! mountpoint -q -- "$m" 2>/dev/null; then notm="$notm $m"; fi
  done <<MOUNTS
$mounts
MOUNTS
  if tcp_open "$dns" 2049; then
    if [ -z "$notm" ]; then say nfs ok "server $dns:2049 answers; shares mounted"
    else say nfs ok "server $dns:2049 answers; not mounted:$notm"; fi
  else
    say nfs fail "no NFS server on $dns:2049${notm:+; not mounted:$notm}"
  fi
fi

# ssh: passwordless, no prompt, strict host keys.
if [ -z "$peers" ]; then
  say ssh skip "no other node to reach"
elif ! command -v ssh >/dev/null 2>&1; then
  say ssh fail "no ssh client"
else
  bad="" n=0
  for p in $peers; do
    n=$((n + 1))
    out=$(timeout 20 ssh -n -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=5 -- "$p" hostname 2>&1)
    if [ "$out" != "$p" ]; then bad="$bad; $p: $(printf '%s' "$out" | tail -n 1)"; fi
  done
  # shellcheck disable=SC2086,SC2116 # echo joins the peers' lines with spaces
  if [ -z "$bad" ]; then say ssh ok "$n node(s): $(echo $peers)"
  else say ssh fail "${bad#; }"; fi
fi

# users: every cluster user exists here with the inventory's UID and GID.
if [ -z "$users" ]; then
  say users skip "no users in the inventory"
else
  bad=""; n=0
  while read -r un uu ug; do
    [ -n "$un" ] || continue
    n=$((n + 1)); found=""
    while IFS=: read -r pn _ pu pg _ || [ -n "$pn" ]; do
      [ "$pn" = "$un" ] || continue
      found=1
      [ "$pu:$pg" = "$uu:$ug" ] || bad="$bad; $un has $pu:$pg, want $uu:$ug"
      break
    done </etc/passwd
    [ -n "$found" ] || bad="$bad; no account $un"
  done <<EOF_USERS
$users
EOF_USERS
  # As the first user, SSH to every other node: batch mode, strict host keys.
  if [ -n "$runas" ] && [ -n "$peers" ] && [ -z "$bad" ]; then
    if ! command -v runuser >/dev/null 2>&1; then bad="no runuser to try SSH as $runas"
    else
      for p in $peers; do
        (cd / && runuser -u "$runas" -- ssh -n -o BatchMode=yes -o StrictHostKeyChecking=yes \
          -o ConnectTimeout=10 "$p" true) >/dev/null 2>&1 || bad="$bad; $runas cannot ssh to $p"
      done
    fi
  fi
  if [ -z "$bad" ]; then say users ok "$n user(s) with the inventory's IDs${runas:+; $runas reaches every node by ssh}"
  else say users fail "${bad#; }"; fi
fi

# time: chrony keeps the clock. A worker's selected source (^*) is the head
# and its clock within $max_offset s of it; the head is synced upstream or
# serves its local stratum. chronyd needs a few polls after a restart: up to
# 30 s for a selected source.
if [ "$time" != 1 ]; then
  say time skip "time sync is off in the inventory (time.enabled: false)"
elif ! command -v chronyc >/dev/null 2>&1; then
  say time fail "no chronyc: chrony is not installed"
else
  i=0 sel="" tr=""
  while :; do
    tr=$(timeout 10 chronyc -n tracking 2>&1)
    sel=$(timeout 10 chronyc -n sources 2>/dev/null | awk '$1 == "^*" {print $2; exit}')
    if [ -n "$sel" ] || { [ "$role" = head ] && printf '%s\n' "$tr" | grep -q '^Reference ID.*7F7F0101'; }; then break; fi
    i=$((i + 1)); [ "$i" -lt 30 ] || break
    sleep 1
  done
  off=$(printf '%s\n' "$tr" | awk '/^System time/ {v = $4; if ($6 == "slow") v = -v; print v}')
  leap=$(printf '%s\n' "$tr" | sed -n 's/^Leap status *: *//p')
  inbound=$(awk -v o="${off:-x}" -v m="$max_offset" 'BEGIN { if (o == "x") exit 1; if (o < 0) o = -o; exit !(o < m) }' && echo 1)
  if [ -z "$leap" ]; then
    say time fail "chronyd not answering: $(printf '%s' "$tr" | tail -n 1)"
  elif [ "$role" = head ]; then
    if [ -n "$sel" ]; then say time ok "synced to $sel, serving $lan"
    elif printf '%s\n' "$tr" | grep -q '^Reference ID.*7F7F0101'; then
      say time ok "no upstream reached: serving its local clock to $lan"
    else say time fail "no source selected and no local stratum ($leap)"; fi
  elif [ "$sel" != "$ntp_src" ]; then
    say time fail "selected source ${sel:-none}, want $ntp_src (the head); leap status $leap"
  elif [ -z "$inbound" ]; then
    say time fail "offset ${off:-unknown} s to the head (bound $max_offset s)"
  else
    say time ok "source $ntp_src (the head), offset ${off} s"
  fi
fi

# mpi: one rank per node of the hostfile, each reporting its node's name.
if [ "$mpi" = nokey ]; then
  say mpi skip "not configured: no cluster key for mpirun's SSH (mpi.install or mpi.cluster_key)"
elif [ "$mpi" != 1 ]; then
  say mpi skip "run from the head"
elif ! command -v mpirun >/dev/null 2>&1; then
  say mpi skip "OpenMPI not installed (mpi.install: openmpi)"
elif [ ! -f "$hostfile" ]; then
  say mpi fail "no $hostfile"
else
  want=$(awk '!/^[[:space:]]*(#|$)/ {print $1}' "$hostfile" | sort -u | tr '\n' ' ')
  # As the first cluster user when there is one (Open MPI refuses root
  # without OMPI_ALLOW_RUN_AS_ROOT), else as root.
  if [ -n "$runas" ]; then set -- runuser -u "$runas" -- env; as=" as $runas"
  else set -- env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; as=""; fi
  # shellcheck disable=SC2016 # each rank's own shell expands its rank and name
  out=$(cd / && "$@" timeout 90 mpirun \
    --hostfile "$hostfile" --map-by ppr:1:node \
    --mca plm_rsh_args "-o BatchMode=yes -o StrictHostKeyChecking=yes" \
    --mca oob_tcp_if_include "$lan" --mca btl_tcp_if_include "$lan" \
    sh -c 'echo "@@rank ${OMPI_COMM_WORLD_RANK:-?} $(hostname)"' 2>&1)
  rc=$?
  got=$(printf '%s\n' "$out" | sed -n 's/^@@rank [^ ]* //p' | sort -u | tr '\n' ' ')
  ranks=$(printf '%s\n' "$out" | grep -c '^@@rank ')
  if [ "$rc" -eq 0 ] && [ -n "$want" ] && [ "$got" = "$want" ]; then
    say mpi ok "$ranks ranks$as: ${got% }"
  else
    say mpi fail "mpirun exit $rc; ranks from ${got:-none}; want ${want:-nodes in $hostfile}: $(printf '%s\n' "$out" | grep -v '^@@rank' | tail -n 3)"
  fi
fi

# slurm: every node of the default partition known and up (idle, or busy
# with jobs), a job on all of them as a user, and an MPI job through Slurm.
if [ "$slurm" = 0 ]; then
  say slurm skip "not configured (slurm.enabled)"
elif [ "$slurm" != 1 ]; then
  say slurm skip "run from the head"
elif ! command -v sinfo >/dev/null 2>&1; then
  say slurm fail "sinfo not found (slurm-client)"
else
  # Nodes register within seconds of a (re)start: wait up to 60 s.
  i=0
  while :; do
    st=$(sinfo -h -N -o '%N %t %E' 2>&1)
    bad=""
    for n in $slurm_nodes; do
      line=$(printf '%s\n' "$st" | awk -v n="$n" '$1 == n { print; exit }')
      state=$(printf '%s' "$line" | awk '{ print $2 }')
      reason=$(printf '%s' "$line" | cut -d' ' -f3-)
      case "$state" in
        idle | mix | alloc | comp) ;;
        "") bad="$bad; $n unknown to slurmctld" ;;
        *) bad="$bad; $n $state${reason:+ ($reason)}" ;;
      esac
    done
    if [ -z "$bad" ] || [ "$i" -ge 60 ]; then break; fi
    sleep 2; i=$((i + 2))
  done
  # shellcheck disable=SC2086 # node names (checked host names), one a word
  count=$(printf '%s\n' $slurm_nodes | grep -c .)
  # shellcheck disable=SC2086
  want=$(printf '%s\n' $slurm_nodes | sort -u | tr '\n' ' ')
  if [ -n "$slurm_user" ]; then set -- runuser -u "$slurm_user" --; as=" as $slurm_user"; else set --; as=""; fi
  if [ -n "$bad" ]; then
    say slurm fail "${bad#; }"
  elif ! out=$(cd / && "$@" timeout 120 srun -N "$count" --immediate=60 -t 2 hostname -s 2>&1); then
    say slurm fail "srun -N $count$as: $(printf '%s\n' "$out" | tail -n 3)"
  elif [ "$(printf '%s\n' "$out" | sort -u | tr '\n' ' ')" != "$want" ]; then
    say slurm fail "srun -N $count$as ran on $(printf '%s\n' "$out" | sort -u | tr '\n' ' '), want $want"
  elif ! command -v mpirun >/dev/null 2>&1; then
    say slurm ok "$count node(s) up; srun$as on $want(no MPI installed)"
  else
    # shellcheck disable=SC2016 # each rank's own shell expands its rank and name
    mo=$(cd / && "$@" timeout 120 salloc -N "$count" --immediate=60 -t 2 \
      mpirun --map-by ppr:1:node \
      --mca oob_tcp_if_include "$lan" --mca btl_tcp_if_include "$lan" \
      sh -c 'echo "@@rank ${OMPI_COMM_WORLD_RANK:-?} $(hostname -s)"' 2>&1)
    rc=$?
    got=$(printf '%s\n' "$mo" | sed -n 's/^@@rank [^ ]* //p' | sort -u | tr '\n' ' ')
    if [ "$rc" -eq 0 ] && [ "$got" = "$want" ]; then
      say slurm ok "$count node(s) up; srun and an MPI job$as through Slurm on ${want% }"
    else
      say slurm fail "MPI through Slurm (salloc mpirun) exit $rc; ranks from ${got:-none}; want $want: $(printf '%s\n' "$mo" | grep -v '^@@rank' | tail -n 3)"
    fi
  fi
fi
echo @@done
} </dev/null
