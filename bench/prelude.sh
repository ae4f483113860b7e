# Sourced before every handler command pyinfra and Ansible run (the same
# commands clusterctl's apply runs, taken from its own JSON report).
# clusterctl's handler round trip defines ifup_safe the same way
# (src/engine/handlers.sh): never bounce the interface carrying this SSH
# session.
session_if=$(ip -o route get "${SSH_CLIENT%% *}" 2>/dev/null | sed -n 's/.* dev \([^ ]*\).*/\1/p')
ifup_safe() {
  if [ "$1" = "$session_if" ] || [ -z "$session_if" ]; then
    echo "$1 carries this SSH session (or it is unknown): not restarted"
    return 0
  fi
  ifdown --force -- "$1" >/dev/null 2>&1 || true
  ifup -- "$1"
}
