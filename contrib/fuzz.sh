#!/usr/bin/env bash
# Fuzz every parser of outside input, SECONDS each (default 60), one target after another:
#   contrib/fuzz.sh 600               # every target, 10 minutes each
#   contrib/fuzz.sh 60 proc_stat      # only these targets
#   JOBS=2 contrib/fuzz.sh 600        # two targets at a time
# Needs a nightly toolchain and cargo-fuzz (cargo install cargo-fuzz). On demand only: CI does
# not run it. The seeds in fuzz/seeds/TARGET are read, never written; what libFuzzer finds
# goes to fuzz/corpus/TARGET (ignored by git); a crash is saved under fuzz/artifacts/TARGET and
# the script ends non-zero. Logs: fuzz/logs/TARGET.log (last lines: execs and coverage).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-60}
shift || true
jobs=${JOBS:-1}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
cargo +nightly fuzz build >/dev/null 2>&1 || { cargo +nightly fuzz build; exit 1; }
mkdir -p logs
run_one() {
  local t=$1
  mkdir -p "corpus/$t"
  if cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- \
      -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
      >"logs/$t.log" 2>&1; then
    echo "$t: ok, $(grep -a -E 'DONE|^Done' "logs/$t.log" | tr -s '\t\n' '  ')"
  else
    echo "$t: FAILED, see fuzz/logs/$t.log and fuzz/artifacts/$t"
    return 1
  fi
}
status=0
running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || status=1
    running=$((running - 1))
  fi
done
while [ "$running" -gt 0 ]; do
  wait -n || status=1
  running=$((running - 1))
done
exit $status
