#!/usr/bin/env bash
# Run an installed hermes-gateway.service under gwshim, with a systemd drop-in.
#
#   contrib/hermes/install-dropin.sh [--system] [--unit NAME] [--gwshim PATH] [--dry-run]
#                                    [--remove] [-- GWSHIM_OPTIONS...]
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
# from contrib/hermes/gwshim.conf.in: `ExecStart=` cleared, then `ExecStart=GWSHIM -- COMMAND`,
# then runs `systemctl [--user] daemon-reload` and checks that systemd now runs gwshim.
#
# Idempotent: its own drop-in is never read, and a command that already starts with a gwshim
# (wrapped by hand in the unit) is not wrapped again. Running it twice writes the same file;
# running it again after `hermes gateway install` or `hermes update` rewrote the unit (a new
# python path) wraps the new command. It does not restart the gateway:
# `systemctl [--user] restart hermes-gateway` does.
#
#   --system        the system unit (`hermes gateway install --system`), needs root
#   --unit NAME     another unit, e.g. a profile's hermes-gateway-coder.service
#   --gwshim PATH   the gwshim binary (default: `command -v gwshim`); made absolute
#   --dry-run       print the drop-in, change nothing
#   --remove        remove the drop-in again (and daemon-reload)
#   -- OPTIONS      gwshim options to put before its `--`, e.g. `-- --grace 10`
#
# Limits: one ExecStart= command (Type=simple/notify/exec units); unit file paths without spaces.
set -euo pipefail

unit=hermes-gateway.service
scope=--user
gwshim=
dry_run=0
remove=0
opts=()
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
template=$here/gwshim.conf.in

die() { echo "install-dropin.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case $1 in
    --system) scope=--system ;;
    --user) scope=--user ;;
    --unit) [ $# -ge 2 ] || die "--unit needs a name"; unit=$2; shift ;;
    --unit=*) unit=${1#--unit=} ;;
    --gwshim) [ $# -ge 2 ] || die "--gwshim needs a path"; gwshim=$2; shift ;;
    --gwshim=*) gwshim=${1#--gwshim=} ;;
    --dry-run) dry_run=1 ;;
    --remove) remove=1 ;;
    -h|--help) sed -n '2,/^set -e/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --) shift; opts=("$@"); break ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done
case $unit in *.service) ;; *) unit=$unit.service ;; esac

if [ "$scope" = --system ]; then
  dir=/etc/systemd/system/$unit.d
else
  dir=${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user/$unit.d
fi
file=$dir/gwshim.conf

if [ "$remove" = 1 ]; then
  if [ "$dry_run" = 1 ]; then echo "would remove $file"; exit 0; fi
  rm -f "$file"
  rmdir "$dir" 2>/dev/null || true
  systemctl "$scope" daemon-reload
  echo "removed $file; restart the unit to run it without gwshim: systemctl $scope restart $unit"
  exit 0
fi

[ -f "$template" ] || die "no template $template"
if [ -z "$gwshim" ]; then
  gwshim=$(command -v gwshim) || die "no gwshim in PATH; give --gwshim PATH"
fi
case $gwshim in /*) ;; *) gwshim=$(cd "$(dirname "$gwshim")" && pwd)/$(basename "$gwshim") ;; esac
[ -x "$gwshim" ] || die "$gwshim is not an executable file"

# The unit's command from its files, this script's drop-in left out.
load=$(systemctl "$scope" show -p LoadState --value "$unit") || die "systemctl $scope show $unit failed"
[ "$load" = loaded ] || die "$unit is not loaded (LoadState=$load); install it first (hermes gateway install)"
fragment=$(systemctl "$scope" show -p FragmentPath --value "$unit")
dropins=$(systemctl "$scope" show -p DropInPaths --value "$unit")
files=()
[ -n "$fragment" ] && files+=("$fragment")
for f in $dropins; do
  case $f in */"$unit".d/gwshim.conf) ;; *) files+=("$f") ;; esac
done
[ "${#files[@]}" -gt 0 ] || die "$unit has no unit file"

# Effective ExecStart= values of the files, in order: an empty one resets the list.
# Continuation lines (a trailing backslash) are joined as systemd joins them.
exec_starts() {
  awk '
    FNR == 1 { sect = ""; buf = "" }
    {
      l = buf $0; buf = ""
      if (l ~ /\\$/) { buf = substr(l, 1, length(l) - 1) " "; next }
      sub(/^[ \t]+/, "", l); sub(/[ \t]+$/, "", l)
      if (l == "" || l ~ /^[#;]/) next
      if (l ~ /^\[/) { sect = l; next }
      if (sect != "[Service]" || l !~ /^ExecStart[ \t]*=/) next
      sub(/^ExecStart[ \t]*=[ \t]*/, "", l)
      if (l == "") n = 0; else cmd[++n] = l
    }
    END { for (i = 1; i <= n; i++) print cmd[i] }
  ' "$@"
}
mapfile -t commands < <(exec_starts "${files[@]}")
[ "${#commands[@]}" = 1 ] ||
  die "$unit has ${#commands[@]} ExecStart= commands in ${files[*]}; expected one"
raw=${commands[0]}
# Prefixes (- ignore failure, + ! !! privileges) stay in front; @ (a separate argv[0]) is refused.
[[ $raw =~ ^([-@:+!]*)(.*)$ ]]
prefix=${BASH_REMATCH[1]}
command=${BASH_REMATCH[2]}
case $prefix in *@*) die "$unit's ExecStart= uses the @ prefix; wrap it by hand" ;; esac
# Already wrapped by hand: keep the command after gwshim's `--`.
first=${command%%[[:space:]]*}
first=${first//\"/}
if [ "$(basename "$first")" = gwshim ]; then
  case $command in *" -- "*) command=${command#* -- } ;; *) die "$unit runs gwshim with no ' -- '; fix it by hand" ;; esac
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
for w in "${opts[@]}"; do line+=" $(quote "$w")"; done
line="$prefix$line -- $command"

text=$(<"$template")
text=${text//@UNIT@/"$unit"}
text=${text//@EXEC_START@/"$line"}

if [ "$dry_run" = 1 ]; then
  echo "# $file"
  printf '%s\n' "$text"
  exit 0
fi
mkdir -p "$dir"
tmp=$(mktemp "$dir/.gwshim.conf.XXXXXX")
printf '%s\n' "$text" >"$tmp"
chmod 0644 "$tmp"
mv -f "$tmp" "$file"
systemctl "$scope" daemon-reload
now=$(systemctl "$scope" show -p ExecStart --value "$unit")
case $now in
  *"argv[]=$gwshim "*) ;;
  *) die "wrote $file, but systemd does not run gwshim (another drop-in sets ExecStart= after it?): $now" ;;
esac
echo "wrote $file:"
echo "  ExecStart=$line"
echo "restart the unit to run it under gwshim: systemctl $scope restart $unit"
