# The write round trip's functions. Sent after quoted assignments of `bk`
# (this run's backup directory), `pf` (the owed-handlers file), `lk` (the
# node's apply lock), `run` (this run's id) and `lease` (seconds the lock is
# held at most if this run dies), and
# followed by a generated `main` that calls them with quoted arguments and
# is itself called on the script's last line: a script cut off in transit
# is a syntax error and runs nothing. Output: @@written, @@backup, @@error,
# @@invalid (with @@| detail lines), @@aborted, @@done (engine/write.rs).
# shellcheck shell=sh
# shellcheck disable=SC2154 # bk, pf, lk, run and lease are assigned before this text
# shellcheck disable=SC2034 # fail is read by the generated main
set -u
trap '' HUP PIPE INT TERM
LC_ALL=C; export LC_ALL
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH
umask 022
fail=0
temps=""
expect() { # PATH: the file is still what the probe read (base64 on stdin; none: absent)
  e=$(mktemp) || { echo "@@error $1: cannot check it"; fail=1; cat >/dev/null; return 1; }
  base64 -d >"$e"
  if [ -s "$e" ] || [ "${2:-}" = present ]; then
    if [ ! -f "$1" ] || ! cmp -s "$e" "$1"; then
      echo "@@changed $1"; fail=1
    fi
  elif [ -e "$1" ]; then
    echo "@@changed $1"; fail=1
  fi
  rm -f "$e"
}
stage() { # PATH MODE OWNER GROUP, base64 content on stdin; sets t
  t=""
  d=${1%/*}; [ -n "$d" ] || d=/
  if ! mkdir -p -- "$d"; then echo "@@error $1: cannot create $d"; fail=1; cat >/dev/null; return 1; fi
  if ! t=$(mktemp "$d/.${1##*/}.clusterctl.XXXXXX"); then echo "@@error $1: cannot create a temporary file in $d"; t=""; fail=1; cat >/dev/null; return 1; fi
  temps="$temps $t"
  if ! base64 -d >"$t"; then echo "@@error $1: cannot write $t"; fail=1; return 1; fi
  if ! chown -- "$3:$4" "$t" || ! chmod -- "$2" "$t"; then echo "@@error $1: cannot set owner $3:$4 mode $2"; fail=1; return 1; fi
}
check() { # PATH COMMAND...: validate a candidate
  p=$1; shift
  if ! out=$("$@" 2>&1); then
    echo "@@invalid $p"
    printf '%s\n' "$out" | sed 's/^/@@| /'
    fail=1
  fi
}
netplan_check() { # CANDIDATE NAME: `netplan generate` on the candidate alone, in a scratch root
  nr=$(mktemp -d) || return 1
  mkdir -p "$nr/etc/netplan" && cp "$1" "$nr/etc/netplan/$2" && chmod 0600 "$nr/etc/netplan/$2" &&
    netplan generate --root-dir "$nr"
  nrc=$?
  rm -rf "$nr"
  return $nrc
}
sshd_check() { # CANDIDATE: sshd -t with the candidate drop-in read before the node's own config
  sc=$(mktemp) || return 1
  printf 'Include %s\nInclude /etc/ssh/sshd_config\n' "$1" >"$sc"
  sshd -t -f "$sc"
  scrc=$?
  rm -f "$sc"
  return $scrc
}
backup() { # PATH
  [ -e "$1" ] || return 0
  if mkdir -p -- "$bk${1%/*}" && chmod 0700 "${bk%/*}" && cp -p -- "$1" "$bk$1"; then
    echo "@@backup $1"
  else
    echo "@@error $1: cannot back it up to $bk$1"; fail=1
  fi
}
owe() { # STEP...: record the handlers this write makes owed, before any rename
  if ! { mkdir -p "${pf%/*}" && printf '%s\n' "$@" >"$pf.new" && mv -f "$pf.new" "$pf"; }; then
    echo "@@error $pf: cannot record the handlers to run"; fail=1
  fi
}
commit() { # PATH TEMP
  if mv -f -- "$2" "$1"; then echo "@@written $1"; else echo "@@error $1: cannot rename $2 over it"; fail=1; fi
}
fix() { # PATH MODE OWNER GROUP
  if chown -- "$3:$4" "$1" && chmod -- "$2" "$1"; then echo "@@written $1"; else echo "@@error $1: cannot set owner $3:$4 mode $2"; fail=1; fi
}
abort() {
  # Our temp paths come from mktemp in fixed directories: no spaces.
  for x in $temps; do rm -f "$x"; done
  unlock
  echo "@@aborted"
  exit 1
}
