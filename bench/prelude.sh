# Put before every handler command pyinfra and Ansible run (the same commands
# clusterctl's apply runs, taken from its own JSON report), followed by
# clusterctl's own handler functions (src/engine/handlers.sh: ifup_safe,
# nft_load, …; the driver appends them). Those expect `session_if` (the
# interface carrying this SSH session, `?` when unknown) and fd 3 for notes.
# shellcheck shell=sh
session_if=$(ip -o route get "${SSH_CLIENT%% *}" 2>/dev/null | sed -n 's/.* dev \([^ ]*\).*/\1/p')
[ -n "$session_if" ] || session_if='?'
# shellcheck disable=SC2034 # read by clusterctl's handler functions appended after this text
pf=/dev/null
exec 3>&1
