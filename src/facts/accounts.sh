# shellcheck shell=sh
# The accounts part of the facts probe (facts/mod.rs parses it), also sent
# alone before planning (engine/keys.rs: every node's accounts are checked
# against the inventory's users before anything anywhere changes). Defines
# `probe_accounts`; sent after a quoted assignment of `users_file`
# (clusterctl's record of the accounts it created).
#
# Prints each passwd entry's name, UID, GID and shell, each group's name,
# GID and members, the login shells, the accounts clusterctl created (its
# record, one name a line), the file system on /home and, for the accounts
# clusterctl created, the expiry day (the lock). Builtins only; no password
# field is printed.
# shellcheck disable=SC2154 # users_file is assigned before this text
probe_accounts() {
  [ -r /etc/passwd ] || return 0
  echo "@@accounts"
  # `|| [ -n "$n" ]`: a last line without its newline still counts.
  while IFS=: read -r n _ u g _ _ sh || [ -n "$n" ]; do echo "@@pw $n $u $g $sh"; done </etc/passwd
  [ -r /etc/group ] && while IFS=: read -r n _ g m || [ -n "$n" ]; do echo "@@gr $n $g $m"; done </etc/group
  [ -r /etc/shells ] && while read -r l _; do case "$l" in /*) echo "@@shell $l" ;; esac; done </etc/shells
  mu=" "
  if [ -r "$users_file" ]; then
    while read -r n _; do [ -n "$n" ] && mu="$mu$n " && echo "@@managed $n"; done <"$users_file"
  fi
  # What is mounted on /home (the last line is the one on top).
  [ -r /proc/mounts ] && while read -r _ mp fs _; do
    if [ "$mp" = /home ]; then echo "@@homefs $fs"; fi
  done </proc/mounts
  if [ "$mu" != " " ] && [ -r /etc/shadow ]; then
    while IFS=: read -r n _ _ _ _ _ _ e _; do
      case "$mu" in *" $n "*) echo "@@expires $n ${e:--}" ;; esac
    done </etc/shadow
  fi
}
