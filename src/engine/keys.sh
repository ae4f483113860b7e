# shellcheck shell=sh
# The cluster key gather (engine/keys.rs): one round trip per node before
# planning. Sent after quoted assignments of k (the cluster key's private
# half), head (the head's name on the head, empty elsewhere) and generate
# (1: make the cluster key on the head when it has none). Output: @@hostkey
# (the node's ed25519 host key), on the head @@public and @@private (base64
# up to @@end), @@error, @@done.
# shellcheck disable=SC2154 # k, head and generate are assigned before this text
set -u
host_key=/etc/ssh/ssh_host_ed25519_key.pub
if [ -f "$host_key" ]; then echo "@@hostkey $(cut -d' ' -f1,2 "$host_key")"; fi
if [ -n "$head" ]; then
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
echo @@done
