#!/usr/bin/env bash
# Run an installed hermes-gateway.service under gwshim, with a systemd drop-in.
#
#   contrib/hermes/install-dropin.sh [--system] [--unit NAME] [--gwshim PATH] [--dry-run]
#                                    [--remove] [-- GWSHIM_OPTIONS...]
#
# A drop-in cannot refer to the unit's own ExecStart=, and the one `hermes gateway install`
# writes is machine-specific (`/path/to/venv/bin/python -m hermes_cli.main gateway run`). So this
# script asks systemd for the unit's current command (`systemctl show -p ExecStart`), and writes
#
#   ~/.config/systemd/user/hermes-gateway.service.d/gwshim.conf      (default: the user unit)
#   /etc/systemd/system/hermes-gateway.service.d/gwshim.conf         (--system)
#
# from contrib/hermes/gwshim.conf.in: `ExecStart=` cleared, then `ExecStart=GWSHIM -- COMMAND`,
# then `systemctl [--user] daemon-reload`. It is idempotent: when the unit already runs under a
# gwshim (this drop-in, or a hand-made one), the command inside it is kept and not wrapped again,
# so running the script twice, or again with a new --gwshim path or options, rewrites the same
# file. It does not restart the gateway: `systemctl [--user] restart hermes-gateway` does.
#
#   --system        the system unit (`hermes gateway install --system`), needs root
#   --unit NAME     another unit, e.g. a profile's hermes-gateway-coder.service
#   --gwshim PATH   the gwshim binary (default: `command -v gwshim`); made absolute
#   --dry-run       print the drop-in, change nothing
#   --remove        remove the drop-in again (and daemon-reload)
#   -- OPTIONS      gwshim options to put before its `--`, e.g. `-- --grace 10`
#
# Limits: systemd prints the command's words unquoted, so a word holding a space or a `;` cannot
# be told apart; the script refuses a unit with more than one ExecStart= command.
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

# The unit's current command: systemd's view, drop-ins included. One line per command:
# { path=/v/bin/python ; argv[]=/v/bin/python -m hermes_cli.main gateway run ; ignore_errors=no ; ... }
load=$(systemctl "$scope" show -p LoadState --value "$unit") || die "systemctl $scope show $unit failed"
[ "$load" = loaded ] || die "$unit is not loaded (LoadState=$load); install it first (hermes gateway install)"
show=$(systemctl "$scope" show -p ExecStart --value "$unit")
n=$(grep -c 'argv\[\]=' <<<"$show" || true)
[ "$n" = 1 ] || die "$unit has $n ExecStart= commands; expected one"
argv_text=$(sed -n 's/.*argv\[\]=\(.*\) ; ignore_errors=.*/\1/p' <<<"$show")
[ -n "$argv_text" ] || die "cannot read the ExecStart= of $unit from: $show"
read -r -a argv <<<"$argv_text"

# Already under a gwshim: keep the command after its `--` (idempotent).
while [ "${#argv[@]}" -gt 0 ] && [ "$(basename "${argv[0]}")" = gwshim ]; do
  rest=("${argv[@]:1}")
  argv=()
  for i in "${!rest[@]}"; do
    if [ "${rest[$i]}" = -- ]; then argv=("${rest[@]:$((i + 1))}"); break; fi
  done
  [ "${#argv[@]}" -gt 0 ] || die "$unit runs ${rest[*]} under gwshim with no '--'; fix it by hand"
done

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
line+=" --"
for w in "${argv[@]}"; do line+=" $(quote "$w")"; done

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
echo "wrote $file:"
echo "  ExecStart=$line"
echo "restart the unit to run it under gwshim: systemctl $scope restart $unit"
