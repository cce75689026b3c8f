#!/usr/bin/env bash
# Run an installed hermes-gateway.service under gwshim, with a systemd drop-in.
#
#   contrib/hermes/install-dropin.sh [--user | --system] [--unit NAME] [--unit-file PATH]
#                                    [--gwshim PATH] [--dry-run] [--remove] [-- GWSHIM_OPTIONS...]
#
# A drop-in cannot refer to the unit's own ExecStart=, and the one `hermes gateway install`
# writes is machine-specific (`/path/to/venv/bin/python -m hermes_cli.main gateway run`). So this
# script reads the unit's command from its files (`systemctl show -p FragmentPath,DropInPaths`:
# the unit and its drop-ins, this script's own drop-in left out, the last `ExecStart=` after the
# last empty one, written as it is there, quoting included) and writes
#
#   ~/.config/systemd/user/hermes-gateway.service.d/gwshim.conf      (default: the user unit)
#   /etc/systemd/system/hermes-gateway.service.d/gwshim.conf         (--system)
#
# from contrib/hermes/gwshim.conf.in: `ExecStart=` cleared, then
#
#   ExecStart=/bin/sh -c '...' GWSHIM [GWSHIM_OPTIONS] -- COMMAND
#
# (the unit's COMMAND as written there), then runs `systemctl [--user] daemon-reload` and checks
# that systemd now runs gwshim. The few lines of sh exec gwshim when it is there and runs, and
# else exec COMMAND itself, with a warning in the journal: a gwshim that went away (`pip
# uninstall`, a venv rebuilt by `hermes update`) never keeps the gateway down, and the next start
# after it is back runs under gwshim again. sh execs either way: the unit's main pid is gwshim's
# (or, unwrapped, the gateway's), as `ExecReload=... $MAINPID` and `NotifyAccess=main` need.
#
# Idempotent: its own drop-in is never read for the command, and a command that already starts
# with a gwshim (wrapped by hand in the unit) is not wrapped again. Running it twice writes the
# same file; running it again after `hermes gateway install` or `hermes update` rewrote the unit
# (a new python path) wraps the new command. It keeps gwshim's options and path: run again
# without `--` and `--gwshim`, it writes the gwshim and the options its drop-in already gives
# (or, for a unit wrapped by hand, the unit's). It does not restart the gateway:
# `systemctl [--user] restart hermes-gateway` does.
#
#   --user            the user unit (the default; `hermes gateway install`)
#   --system          the system unit (`hermes gateway install --system`), needs root
#   --unit NAME       another unit, e.g. a profile's hermes-gateway-coder.service
#   --unit-file PATH  read the unit from PATH (and its drop-ins from the standard unit folders)
#                     instead of asking systemd; the unit is PATH's file name unless --unit says
#   --gwshim PATH     the gwshim binary (default: the one the drop-in already runs, if it is
#                     there, else the gwshim beside this script, as in a venv's bin/ or
#                     /usr/bin, else `command -v gwshim`); made absolute
#   --dry-run         print the drop-in, change nothing
#   --remove          remove the drop-in again (and daemon-reload), and gwshim's runtime folder
#                     once the unit no longer runs under gwshim
#   -h, --help        this text
#   -- OPTIONS        gwshim options to put before its `--`, e.g. `-- --grace 10`; they replace
#                     the ones kept from before (a bare `--` clears them)
#
# Without a running systemd manager (systemctl cannot connect: an image build, a chroot, root
# with no user session) the unit and its drop-ins are read from the standard unit folders
# (systemd.unit(5): ~/.config/systemd/user, /etc/systemd/user, /usr/lib/systemd/user ...; with
# --system /etc/systemd/system, /run/systemd/system, /usr/lib/systemd/system ...), and the
# drop-in is written without a daemon-reload: systemd reads it when it starts.
#
# The drop-in is this script's own: it is rewritten whole on every run, so settings of your own
# belong in another drop-in (`systemctl [--user] edit UNIT`). A gwshim.conf that this script did
# not write (its first line says it did) is neither replaced nor removed.
#
# A drop-in that systemd reads after gwshim.conf (a name that sorts after it, as `systemctl edit`'s
# override.conf does) and sets ExecStart= would silently replace gwshim's: the script names it and
# changes nothing. The drop-in also sets SyslogIdentifier= to the tag the unit's lines had before
# (the name of the unit's program, e.g. `python`), unless the unit sets one itself, so
# `journalctl -t` still finds the gateway's lines (gwshim's own, tagged the same, start "gwshim:").
#
# Exit status: 0 done, 1 the unit cannot be wrapped (not installed, no or several ExecStart=,
# no gwshim, a gwshim.conf of someone else's in the way, a later drop-in that sets ExecStart=,
# --system without root), 2 bad arguments.
# Limits: one ExecStart= command (Type=simple/notify/exec units); unit file paths without spaces.
set -euo pipefail

unit=
scope=--user
gwshim=
unit_file=
dry_run=0
remove=0
opts=()
opts_given=0
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
template=$here/gwshim.conf.in
# Installed (the wheel: VENV/bin/gwshim-install-dropin; the .deb: /usr/bin/), the template is
# in ../share/gwshim/.
[ -f "$template" ] || template=$here/../share/gwshim/gwshim.conf.in

# Messages name the script as it was called (gwshim-install-dropin when installed); --help's
# synopsis too: its name if PATH finds it so, else the path it was called by.
me=${0##*/}
called=$0
[ "$(command -v -- "$me" 2>/dev/null)" = "$0" ] && called=$me
die() { echo "$me: $*" >&2; exit 1; }
usage() { echo "$me: $* (see --help)" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case $1 in
    --system) scope=--system ;;
    --user) scope=--user ;;
    --unit) [ $# -ge 2 ] || usage "--unit needs a name"; unit=$2; shift ;;
    --unit=*) unit=${1#--unit=} ;;
    --unit-file) [ $# -ge 2 ] || usage "--unit-file needs a path"; unit_file=$2; shift ;;
    --unit-file=*) unit_file=${1#--unit-file=} ;;
    --gwshim) [ $# -ge 2 ] || usage "--gwshim needs a path"; gwshim=$2; shift ;;
    --gwshim=*) gwshim=${1#--gwshim=} ;;
    --dry-run) dry_run=1 ;;
    --remove) remove=1 ;;
    -h|--help) help=$(sed -n '2,/^set -e/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//')
      printf '%s\n' "${help//contrib\/hermes\/install-dropin.sh/$called}"; exit 0 ;;
    --) shift; opts=("$@"); opts_given=1; break ;;
    *) usage "unknown argument $1" ;;
  esac
  shift
done
if [ -n "$unit_file" ]; then
  [ -f "$unit_file" ] || die "--unit-file $unit_file: no such file"
  [ -n "$unit" ] || unit=$(basename "$unit_file")
fi
unit=${unit:-hermes-gateway.service}
case $unit in *.service) ;; *) unit=$unit.service ;; esac

system_dirs=(/etc/systemd/system /run/systemd/system /usr/local/lib/systemd/system
  /usr/lib/systemd/system /lib/systemd/system)
if [ "$scope" = --system ]; then
  dir=/etc/systemd/system/$unit.d
  unit_dirs=("${system_dirs[@]}")
else
  dir=${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user/$unit.d
  unit_dirs=("${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user" /etc/systemd/user)
  [ -n "${XDG_RUNTIME_DIR:-}" ] && unit_dirs+=("$XDG_RUNTIME_DIR/systemd/user")
  unit_dirs+=(/run/systemd/user "${XDG_DATA_HOME:-$HOME/.local/share}/systemd/user"
    /usr/local/lib/systemd/user /usr/lib/systemd/user)
fi
file=$dir/gwshim.conf
# Before anything else fails on a permission: one line that says what is needed.
if [ "$scope" = --system ] && [ "$dry_run" = 0 ] && [ "$(id -u)" != 0 ]; then
  die "--system changes $dir, which needs root: run it with sudo"
fi
# The first line of every drop-in this script writes (gwshim.conf.in).
if [ -e "$file" ] && ! head -n 1 -- "$file" 2>/dev/null | grep -q "a drop-in written by gwshim's"; then
  die "$file was not written by this script; leaving it alone (move it away, or merge it into a drop-in of another name)"
fi

# Whether a systemd manager of this scope answers (an unknown unit still gets an answer).
manager=1
systemctl "$scope" show -p LoadState --value "$unit" >/dev/null 2>&1 || manager=0
reload() {
  if [ "$manager" = 1 ]; then
    systemctl "$scope" daemon-reload
  else
    echo "no systemd manager answers (systemctl $scope): not reloaded; systemd reads the change when it starts"
  fi
}
# No such user unit, but a system unit of that name (`hermes gateway install --system`; root's
# own user manager, if any, knows nothing of it): say to add --system.
system_hint() {
  [ "$scope" = --user ] && [ -z "$unit_file" ] || return 0
  local f= d
  if [ "$(systemctl --system show -p LoadState --value "$unit" 2>/dev/null)" = loaded ]; then
    f=$(systemctl --system show -p FragmentPath --value "$unit" 2>/dev/null)
  else
    for d in "${system_dirs[@]}"; do
      if [ -e "$d/$unit" ]; then f=$d/$unit; break; fi
    done
  fi
  [ -z "$f" ] || die "$unit is a system unit here ($f), not a user unit: add --system (as root)"
}

# `settings KEY FILE...`: every value of [Service] KEY= in the files, in order, empty ones
# included. Continuation lines (a trailing backslash) are joined as systemd joins them.
settings() {
  awk -v key="$1" '
    FNR == 1 { sect = ""; buf = "" }
    {
      l = buf $0; buf = ""
      if (l ~ /\\$/) { buf = substr(l, 1, length(l) - 1) " "; next }
      sub(/^[ \t]+/, "", l); sub(/[ \t]+$/, "", l)
      if (l == "" || l ~ /^[#;]/) next
      if (l ~ /^\[/) { sect = l; next }
      if (sect != "[Service]" || l !~ ("^" key "[ \t]*=")) next
      sub(("^" key "[ \t]*=[ \t]*"), "", l)
      print l
    }
  ' "${@:2}"
}
# Effective ExecStart= values of the files, in order: an empty one resets the list.
exec_starts() {
  settings ExecStart "$@" | awk '{ if ($0 == "") n = 0; else cmd[++n] = $0 }
    END { for (i = 1; i <= n; i++) print cmd[i] }'
}

# A gwshim command line as written in ExecStart= (after any prefix): whether its first word
# is a gwshim (any name when $2 is "any"), and then `GWSHIM`, `OPTIONS` and `COMMAND` of
# `GWSHIM OPTIONS -- COMMAND` (gw_path unquoted, as `quote` below wrote it).
split_gwshim() {
  local cmd=$1 first rest
  if [[ $cmd == \"* ]]; then
    first=${cmd#\"}; first=${first%%\"*}; rest=${cmd#\"*\"}
  else
    first=${cmd%%[[:space:]]*}; rest=${cmd#"$first"}
  fi
  [ "${2:-}" = any ] || [ "$(basename "$first")" = gwshim ] || return 1
  rest=" ${rest#"${rest%%[![:space:]]*}"}"
  case $rest in *" -- "*) ;; *) return 2 ;; esac
  gw_path=${first//\$\$/\$}; gw_path=${gw_path//%%/%}
  gw_opts=${rest%% -- *}; gw_opts=${gw_opts# }
  gw_command=${rest#* -- }
}

# The line this script writes runs `/bin/sh -c 'SCRIPT' GWSHIM ...`: what follows the script.
after_script() {
  local l=$1
  [[ $l =~ ^[-@:+!]*(.*)$ ]]
  l=${BASH_REMATCH[1]}
  case $l in "/bin/sh -c '"*) l=${l#*\' } ;; esac
  printf '%s' "$l"
}

# Whether drop-in name $1 comes after gwshim.conf: systemd reads drop-ins in the byte order of
# their names, whatever folder each is in.
after_mine() {
  [ "$1" != gwshim.conf ] &&
    [ "$(printf '%s\n' gwshim.conf "$1" | LC_ALL=C sort | tail -n 1)" = "$1" ]
}

if [ "$remove" = 1 ]; then
  # The drop-in's RuntimeDirectory=gwshim-%N (kept across restarts, RuntimeDirectoryPreserve=yes):
  # gwshim's pacing history and notify socket. Removed once no gwshim of the unit runs.
  if [ "$scope" = --system ]; then runtime=/run; else runtime=${XDG_RUNTIME_DIR:-/run/user/$(id -u)}; fi
  folder=$runtime/gwshim-${unit%.service}
  sweep() {
    [ -d "$folder" ] || return 0
    state=inactive
    [ "$manager" = 1 ] && state=$(systemctl "$scope" show -p ActiveState --value "$unit")
    if [ "$state" != inactive ] && [ "$state" != failed ]; then
      echo "$unit still runs under gwshim: restart it, then run this again to remove $folder"
    elif [ "$dry_run" = 1 ]; then
      echo "would remove $folder"
    else
      rm -rf -- "$folder" && echo "removed $folder"
    fi
  }
  [ -e "$file" ] || { echo "no $file: nothing to remove"; sweep; exit 0; }
  if [ "$dry_run" = 1 ]; then echo "would remove $file"; sweep; exit 0; fi
  rm -f "$file" || die "cannot remove $file"
  rmdir "$dir" 2>/dev/null || true
  reload
  echo "removed $file; restart the unit to run it without gwshim: systemctl $scope restart $unit"
  sweep
  exit 0
fi

[ -f "$template" ] || die "no template $template"
# gwshim's path and options from before: this script's drop-in (a unit wrapped by hand: below).
kept= kept_gwshim=
if [ -f "$file" ]; then
  mine=$(exec_starts "$file" | tail -n 1)
  if split_gwshim "$(after_script "$mine")" any; then kept=$gw_opts kept_gwshim=$gw_path; fi
fi
kept_note=
if [ -z "$gwshim" ] && [ -n "$kept_gwshim" ] && [ -x "$kept_gwshim" ]; then
  gwshim=$kept_gwshim   # as the options are kept
  kept_note=" (the drop-in's gwshim, kept; --gwshim PATH for another)"
elif [ -z "$gwshim" ] && [ -x "$here/gwshim" ]; then
  gwshim=$here/gwshim   # installed beside gwshim: a venv's bin/ (the wheel) or /usr/bin
elif [ -z "$gwshim" ]; then
  gwshim=$(command -v gwshim) || {
    [ -z "$kept_gwshim" ] || die "the drop-in's gwshim $kept_gwshim is gone and there is no gwshim in PATH; give --gwshim PATH"
    die "no gwshim in PATH; give --gwshim PATH"
  }
fi
[ -f "$gwshim" ] && [ -x "$gwshim" ] || die "$gwshim is not an executable file"
case $gwshim in /*) ;; *) gwshim=$(cd "$(dirname "$gwshim")" && pwd)/$(basename "$gwshim") ;; esac

# The unit's files, this script's drop-in left out: from systemd, or else (no manager, or
# --unit-file) from the standard unit folders, as systemd would find them.
files=()
if [ -z "$unit_file" ] && [ "$manager" = 1 ]; then
  load=$(systemctl "$scope" show -p LoadState --value "$unit") || die "systemctl $scope show $unit failed"
  [ "$load" = loaded ] || system_hint
  [ "$load" = loaded ] || die "$unit is not loaded (LoadState=$load); install it first (hermes gateway install)"
  fragment=$(systemctl "$scope" show -p FragmentPath --value "$unit")
  dropins=$(systemctl "$scope" show -p DropInPaths --value "$unit")
else
  fragment=$unit_file
  if [ -z "$fragment" ]; then
    for d in "${unit_dirs[@]}"; do
      if [ -e "$d/$unit" ]; then fragment=$d/$unit; break; fi
    done
    [ -n "$fragment" ] || system_hint
    [ -n "$fragment" ] ||
      die "$unit is not installed: no such unit file in ${unit_dirs[*]} (and no systemd manager to ask); install it first (hermes gateway install) or give --unit-file PATH"
  fi
  [ "$(readlink -f "$fragment")" != /dev/null ] || die "$unit is masked ($fragment)"
  # Drop-ins: every UNIT.d/*.conf, a name in an earlier folder hiding the same name in a later
  # one, applied in the order of their names.
  declare -A seen=()
  names=()
  for d in "${unit_dirs[@]}"; do
    for f in "$d/$unit.d"/*.conf; do
      [ -f "$f" ] || continue
      n=$(basename "$f")
      [ -n "${seen[$n]:-}" ] && continue
      seen[$n]=$f
      names+=("$n")
    done
  done
  dropins=
  if [ "${#names[@]}" -gt 0 ]; then
    while IFS= read -r n; do dropins+="${seen[$n]} "; done < <(printf '%s\n' "${names[@]}" | LC_ALL=C sort)
  fi
fi
[ -n "$fragment" ] && files+=("$fragment")
for f in $dropins; do
  case $f in
    */"$unit".d/gwshim.conf) ;;
    *)
      files+=("$f")
      # `systemctl edit`'s override.conf sorts after gwshim.conf: its ExecStart= would win.
      if after_mine "${f##*/}" && [ "$(settings ExecStart "$f" | wc -l)" -gt 0 ]; then
        die "$f sets ExecStart= and systemd reads it after gwshim.conf, so its command would run instead of gwshim: rename it to sort before gwshim.conf (e.g. ${f%/*}/10-${f##*/}), or move its ExecStart= lines into such a drop-in, and run this again"
      fi
      ;;
  esac
done
[ "${#files[@]}" -gt 0 ] || die "$unit has no unit file"

mapfile -t commands < <(exec_starts "${files[@]}")
[ "${#commands[@]}" = 1 ] ||
  die "$unit has ${#commands[@]} ExecStart= commands in ${files[*]}; expected one"
raw=${commands[0]}
# Prefixes (- ignore failure, + ! !! privileges, : no $ expansion) stay in front; @ (a separate
# argv[0]) is refused.
[[ $raw =~ ^([-@:+!]*)(.*)$ ]]
prefix=${BASH_REMATCH[1]}
command=${BASH_REMATCH[2]}
case $prefix in *@*) die "$unit's ExecStart= uses the @ prefix; wrap it by hand" ;; esac
# Already wrapped by hand: keep the command after gwshim's `--` (and its options, if the
# drop-in gave none).
if split_gwshim "$command"; then
  [ -f "$file" ] || kept=$gw_opts
  command=$gw_command
elif [ $? = 2 ]; then
  die "$unit runs gwshim with no ' -- '; fix it by hand"
fi

# A word as systemd's ExecStart= reads it: % and $ doubled, quoted when it holds blanks,
# quotes or backslashes.
quote() {
  local w=${1//%/%%}
  w=${w//\$/\$\$}
  case $w in
    *[[:space:]\"\'\\]* | "") w=${w//\\/\\\\}; w=${w//\"/\\\"}; printf '"%s"' "$w" ;;
    *) printf '%s' "$w" ;;
  esac
}
line=$(quote "$gwshim")
if [ "$opts_given" = 1 ]; then
  for w in "${opts[@]}"; do line+=" $(quote "$w")"; done
  words=("${opts[@]}")
else
  [ -z "$kept" ] || line+=" $kept"
  read -ra words <<<"${kept//\"/}"
fi
# gwshim when it is there and runs, else the command itself: a gwshim gone (pip uninstall, a
# venv rebuilt) must not keep the gateway down. sh execs, so the main pid stays the one systemd
# started. $0 is gwshim; the words up to the first `--` are its options. No quote, backslash or
# % in it: systemd reads it as one word, only $$ becomes $ (one $ with the : prefix).
d='$$'
case $prefix in *:*) d='$' ;; esac
fallback="if [ -x \"${d}0\" ] && \"${d}0\" --version >/dev/null 2>&1; then exec \"${d}0\" \"${d}@\"; fi; \
while [ ${d}# -gt 0 ] && [ \"${d}1\" != -- ]; do shift; done; [ ${d}# -gt 0 ] && shift; \
echo \"${d}{JOURNAL_STREAM:+<4>}gwshim: warning: ${d}0 is missing or does not run: starting the gateway without gwshim\" >&2; \
exec \"${d}@\""
line="$prefix/bin/sh -c '$fallback' $line -- $command"

# The journal tag of the unit's lines without gwshim: the name of the program its ExecStart=
# runs, unless the unit sets SyslogIdentifier= itself.
first_word() {
  local c=$1 w
  if [[ $c == \"* ]]; then w=${c#\"}; w=${w%%\"*}; else w=${c%%[[:space:]]*}; fi
  printf '%s' "${w##*/}"
}
own_ident=$(settings SyslogIdentifier "${files[@]}" | tail -n 1)
if [ -n "$own_ident" ]; then
  syslog="# The unit's own SyslogIdentifier=$own_ident tags the gateway's lines and gwshim's."
else
  ident=$(first_word "$command")
  syslog="# The tag the unit's lines had without gwshim (its program's name), so \`journalctl -t $ident\`
# still finds the gateway's lines; gwshim's own lines carry it too and start \"gwshim:\".
SyslogIdentifier=$ident"
fi
# RuntimeDirectoryPreserve= is the unit's, not gwshim's folder's alone.
runtime_dirs=$(settings RuntimeDirectory "${files[@]}" | tr '\n' ' ' | sed 's/ *$//')
if [ -n "$runtime_dirs" ]; then
  preserve="# RuntimeDirectoryPreserve= applies to every RuntimeDirectory= of the unit: its own ($runtime_dirs)
# is now kept across restarts and stops too, until reboot."
else
  preserve="# RuntimeDirectoryPreserve= applies to every RuntimeDirectory= of the unit (this one has none
# of its own): one added later is kept across restarts and stops too, until reboot."
fi

# The template's comments say what these options do (option words only; GWSHIM_* variables
# in the unit's Environment= are not looked at).
grace=5 restart_status= keep="75 (restart now) and 78 (fatal config)"
leave=0 transparent=0 no_relay=0 no_env=0
for ((i = 0; i < ${#words[@]}; i++)); do
  w=${words[i]} next=${words[i + 1]:-}
  case $w in
    --grace) grace=$next ;;
    --grace=*) grace=${w#*=} ;;
    --restart-status) restart_status=$next ;;
    --restart-status=*) restart_status=${w#*=} ;;
    --keep-status) keep=$next ;;
    --keep-status=*) keep=${w#*=} ;;
    --leave-orphans) leave=1 ;;
    --transparent) transparent=1 ;;
    --no-notify-relay) no_relay=1 ;;
    --no-supervisor-env) no_env=1 ;;
  esac
done
if [ "$no_relay" = 1 ]; then
  notify="--no-notify-relay: systemd's NOTIFY_SOCKET goes to the gateway (Type=notify needs NotifyAccess=all)."
  notify_access="# --no-notify-relay: NotifyAccess= stays as the unit has it."
else
  notify="sd_notify is relayed: Type=notify, NotifyAccess=main and WatchdogSec= keep working."
  notify_access="# gwshim gets a notify socket, so \`systemctl status\` shows what it does (\"gateway running,
# pid 4242\"; \"gateway failed 5 times fast; next start in 16 s\"); hermes's watchdog unit sets it too.
NotifyAccess=main"
fi
if [ "$no_env" = 1 ]; then
  supervisor_env="--no-supervisor-env: gwshim does not set HERMES_GATEWAY_EXTERNAL_SUPERVISOR=1 for the gateway."
else
  supervisor_env="The gateway sees HERMES_GATEWAY_EXTERNAL_SUPERVISOR=1, so /restart exits 75 for systemd."
fi
# A crash exits 70 rather than gwshim's default 75 unless --restart-status says otherwise, so
# that SuccessExitStatus=75 makes only a planned restart a success (OnFailure= on systemd 254+).
if [ "$transparent" = 1 ]; then
  restart_env="# --transparent: the gateway's own failure statuses reach systemd."
  force=75
elif [ -n "$restart_status" ]; then
  restart_env="# --restart-status $restart_status: a crash exits $restart_status."
  force="75 $restart_status"
else
  restart_status=70
  restart_env="Environment=GWSHIM_RESTART_STATUS=70"
  force="75 70"
fi
[ "$force" = "75 75" ] && force=75
if [ "$transparent" = 1 ]; then
  statuses="--transparent: gwshim exits with the gateway's own status (none becomes 75);"
  stop="--transparent: after \`systemctl stop\` gwshim exits with the gateway's status (1 on an
# unexpected SIGTERM), so the unit may end failed."
else
  [ "$keep" = none ] && keep="nothing but 0"
  statuses="gwshim passes ${keep//,/, } through, any other failure becomes $restart_status;"
  stop="gwshim exits 0 after \`systemctl stop\`, however the gateway ended (it exits 1 on an
# unexpected SIGTERM), so the unit ends inactive, not failed."
fi
if [ "$leave" = 1 ]; then
  leftovers="--leave-orphans: gwshim exits when the gateway has, leaving its leftover processes to
# systemd (KillMode=mixed ends them at the latest when the unit stops)."
else
  leftovers="gwshim ends the gateway's leftover processes within --grace ($grace s) after the gateway exits:
# keep TimeoutStopSec= (60 s or more in the unit hermes writes) above the drain plus that grace."
fi

text=$(<"$template")
text=${text//@UNIT@/"$unit"}
text=${text//@EXEC_START@/"$line"}
text=${text//@NOTIFY@/"$notify"}
text=${text//@NOTIFY_ACCESS@/"$notify_access"}
text=${text//@SUPERVISOR_ENV@/"$supervisor_env"}
text=${text//@STATUSES@/"$statuses"}
text=${text//@RESTART_ENV@/"$restart_env"}
text=${text//@FORCE_STATUSES@/"$force"}
text=${text//@STOP@/"$stop"}
text=${text//@LEFTOVERS@/"$leftovers"}
text=${text//@SYSLOG@/"$syslog"}
text=${text//@PRESERVE@/"$preserve"}

if [ "$dry_run" = 1 ]; then
  echo "# $file"
  printf '%s\n' "$text"
  exit 0
fi
mkdir -p "$dir" 2>/dev/null || die "cannot make $dir (as $(id -un))"
tmp=$(mktemp "$dir/.gwshim.conf.XXXXXX" 2>/dev/null) || die "cannot write in $dir (as $(id -un))"
printf '%s\n' "$text" >"$tmp"
chmod 0644 "$tmp"
mv -f "$tmp" "$file"
reload
# (A --unit-file unit the manager has not loaded has nothing to check yet.)
if [ "$manager" = 1 ] && [ "$(systemctl "$scope" show -p LoadState --value "$unit")" = loaded ]; then
  now=$(systemctl "$scope" show -p ExecStart --value "$unit")
  case $now in
    *"argv[]=/bin/sh -c "*" $gwshim "*) ;;
    *) die "wrote $file, but systemd does not run gwshim (another drop-in sets ExecStart= after it?): $now" ;;
  esac
fi
echo "wrote $file:"
echo "  ExecStart=/bin/sh -c '...' $(after_script "$line")"
echo "  (sh runs gwshim, $gwshim$kept_note; while it is missing, the command alone, with a warning)"
echo "restart the unit to run it under gwshim: systemctl $scope restart $unit"
