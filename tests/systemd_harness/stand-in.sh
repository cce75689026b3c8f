#!/bin/sh
# A stand-in service for the systemd harness: stand-in.sh DIR FAIL_STARTS FAIL_STATUS [TERM_STATUS]
# Counts its starts in DIR/count and appends events to DIR/events:
#   start N PID PPID TIME   on every start (TIME: seconds since the epoch)
#   exit N PID STATUS       on the first FAIL_STARTS starts, then exits STATUS at once
#   up N PID                otherwise, once its traps are set; then it stays up until a signal:
#   TERM N PID TIME         then exits TERM_STATUS (default 1, as the gateway on an unexpected TERM)
#   USR1 N PID TIME         then "drains" for 0.2 s and exits 75 (a planned restart; exiting at
#                           once races systemd's reload job, which then fails)
#   INT N PID TIME          then exits 0;   HUP N PID TIME   then exits 1
d=$1 fail_starts=${2:-0} fail_status=${3:-1} term_status=${4:-1}
n=$(( $(cat "$d/count" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$d/count"
echo "start $n $$ $PPID $(date +%s.%N)" >> "$d/events"
if [ "$n" -le "$fail_starts" ]; then
  echo "exit $n $$ $fail_status" >> "$d/events"
  exit "$fail_status"
fi
sleeper=
on() {
  echo "$1 $n $$ $(date +%s.%N)" >> "$d/events"
  [ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null
  [ "$1" = USR1 ] && sleep 0.2
  exit "$2"
}
trap 'on TERM "$term_status"' TERM
trap 'on USR1 75' USR1
trap 'on INT 0' INT
trap 'on HUP 1' HUP
sleep 1000000 &
sleeper=$!
echo "up $n $$" >> "$d/events"
wait "$sleeper"
echo "sleeper-ended $n $$" >> "$d/events"
exit 1
