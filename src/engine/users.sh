# The accounts' functions (cluster users), part of the write round trip
# (engine/users.rs builds the `accounts` function that calls them, with
# every value quoted; names are checked account names, never option-like,
# and each command ends its options with `--`). Sent after `users_file`
# (clusterctl's record of the accounts it created) is assigned and after
# write.sh (`fail`). `acct_root`, when set, is a scratch root for the tests
# (`--root`). Output: @@account DONE NAME, @@error.
# shellcheck shell=sh
# shellcheck disable=SC2154 # users_file and fail come before this text
# shellcheck disable=SC2034 # fail is read by the write script's main
acct_opts() { # sets the --root option for the tests' scratch root
  if [ -n "${acct_root:-}" ]; then set -- --root "$acct_root"; fi
  ropt="$*"
}
acct_record() { # NAME: recorded before useradd, so a half-made account is still ours
  rf="${acct_root:-}$users_file"
  if grep -qx -- "$1" "$rf" 2>/dev/null; then return 0; fi
  if ! { mkdir -p -- "${rf%/*}" && printf '%s\n' "$1" >>"$rf"; }; then
    echo "@@error user $1: cannot record it in $users_file"; fail=1; return 1
  fi
}
acct_create() { # NAME UID GID SHELL GROUPS(comma-separated, may be empty) MAKEGROUP(yes|no) HOME(-m|-M)
  acct_opts
  acct_record "$1" || return 1
  # shellcheck disable=SC2086 # ropt is empty or `--root DIR` (a mktemp path in tests)
  if [ "$6" = yes ] && ! out=$(groupadd $ropt -g "$3" -- "$1" 2>&1); then
    echo "@@error user $1: groupadd failed"; printf '%s\n' "$out" | sed 's/^/@@| /'; fail=1; return 1
  fi
  # -M: the home is on the head's NFS share, made there.
  case "$7" in -m|-M) ;; *) echo "@@error user $1: bad home flag"; fail=1; return 1 ;; esac
  if [ -n "$5" ]; then set -- "$1" "$2" "$3" "$4" "$7" -G "$5"; else set -- "$1" "$2" "$3" "$4" "$7"; fi
  n=$1 u=$2 g=$3 s=$4; shift 4
  # shellcheck disable=SC2086
  # -p '*': no password, yet not "locked" (useradd's default `!` makes an
  # sshd without PAM, as on Alpine, refuse even key and host-based logins).
  if ! out=$(useradd $ropt -u "$u" -g "$g" -s "$s" -p '*' "$@" -- "$n" 2>&1); then
    echo "@@error user $n: useradd failed"; printf '%s\n' "$out" | sed 's/^/@@| /'; fail=1; return 1
  fi
  echo "@@account create $n"
}
acct_update() { # NAME SHELL(or -) GROUPS(or -: unchanged; empty: none) UNLOCK(yes|no)
  acct_opts
  n=$1; set -- "$2" "$3" "$4"
  # shellcheck disable=SC2086
  if [ "$1" != - ] && ! out=$(usermod $ropt -s "$1" -- "$n" 2>&1); then
    echo "@@error user $n: usermod -s failed"; printf '%s\n' "$out" | sed 's/^/@@| /'; fail=1; return 1
  fi
  # shellcheck disable=SC2086
  if [ "$2" != - ] && ! out=$(usermod $ropt -G "$2" -- "$n" 2>&1); then
    echo "@@error user $n: usermod -G failed"; printf '%s\n' "$out" | sed 's/^/@@| /'; fail=1; return 1
  fi
  # shellcheck disable=SC2086
  if [ "$3" = yes ] && ! out=$(usermod $ropt -e '' -- "$n" 2>&1); then
    echo "@@error user $n: usermod -e failed"; printf '%s\n' "$out" | sed 's/^/@@| /'; fail=1; return 1
  fi
  # Undo the lock's `!` too (an sshd without PAM refuses a `!` field); an
  # account whose field would then be empty stays as it is.
  # shellcheck disable=SC2086
  if [ "$3" = yes ]; then usermod $ropt -U -- "$n" >/dev/null 2>&1 || :; fi
  echo "@@account update $n"
}
acct_system() { # NAME ID SHELL MAKEGROUP(yes|no): a service's account (munge, slurm), UID = GID = ID, no home, never recorded
  acct_opts
  # shellcheck disable=SC2086
  if [ "$4" = yes ] && ! out=$(groupadd $ropt -r -g "$2" -- "$1" 2>&1); then
    echo "@@error system account $1: groupadd failed"; printf '%s\n' "$out" | sed 's/^/@@| /'; fail=1; return 1
  fi
  # shellcheck disable=SC2086
  if ! out=$(useradd $ropt -r -u "$2" -g "$2" -d /nonexistent -M -s "$3" -- "$1" 2>&1); then
    echo "@@error system account $1: useradd failed"; printf '%s\n' "$out" | sed 's/^/@@| /'; fail=1; return 1
  fi
  echo "@@account system $1"
}
acct_lock() { # NAME: out of the inventory: locked and expired (day 1), files kept
  acct_opts
  # shellcheck disable=SC2086
  if ! out=$(usermod $ropt -L -e 1 -- "$1" 2>&1); then
    echo "@@error user $1: usermod -L failed"; printf '%s\n' "$out" | sed 's/^/@@| /'; fail=1; return 1
  fi
  echo "@@account lock $1"
}
