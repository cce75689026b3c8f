#!/usr/bin/env bash
# Benchmarks gwshim side by side with tini, dumb-init and catatonit, in one run on this
# machine, and prints one Markdown table: each figure, and its ratio to the best peer.
# A benchmark prints figures; it asserts nothing about time.
#
#   contrib/bench/bench.sh            # full run (about 3-5 minutes)
#   contrib/bench/bench.sh --quick    # fewer runs, shorter idle window (about 1 minute)
#
# gwshim's columns: `cargo build --release` (dynamic), gwshim-dist (what users install: the
# x86_64 archive in dist/, GWSHIM_DIST=DIR elsewhere) and --small where nightly can build it.
# Needs root (apt-get for the peers, a pid namespace for the reaping test). The timing half
# is measure.c, the floor of the spawn test is floor.c; both are built here.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

runs=2000 signals=1000 orphans=10000 idle=10 rounds=3 sig_rounds=10
case "${1:-}" in
--quick) runs=300 signals=200 orphans=2000 idle=3 rounds=2 sig_rounds=4 ;;
"") ;;
*)
	echo "usage: $0 [--quick]" >&2
	exit 2
	;;
esac

# gwshim paces restarts only inside a systemd unit; run it as from a shell.
unset INVOCATION_ID MANAGERPID JOURNAL_STREAM NOTIFY_SOCKET
for v in $(compgen -e); do [[ $v != GWSHIM_* ]] || unset "$v"; done
export LC_ALL=C
load=$(cut -d' ' -f1-3 /proc/loadavg)
say() { echo "bench: $*" >&2; }

# --- the peers and tools, from Debian's packages --------------------------------------
need=()
for p in tini dumb-init catatonit strace; do
	command -v "$p" >/dev/null || need+=("$p")
done
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v musl-gcc >/dev/null || need+=(musl-tools)
command -v unshare >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
	say "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${need[@]}" >/dev/null
fi

# --- gwshim, dynamic and static --------------------------------------------------------
cd "$root"
say "building gwshim (release)"
cargo build --release --quiet
gw_dyn=$root/target/release/gwshim

is_static() { ! readelf -d "$1" 2>/dev/null | grep -q NEEDED; }
# The project's own static builds; the script prints the binary's path last.
static_build() {
	local out
	out=$("$root/contrib/build-static.sh" "$@" | tail -n 1) || return 1
	[[ $out == /* ]] || out=$root/$out
	is_static "$out" || {
		say "$out is not a static binary"
		return 1
	}
	echo "$out"
}
# The shipped binary: the one in dist/'s archive for this machine (contrib/release.sh, run here
# for this architecture if dist/ has none), checked against SHA256SUMS.
dist=${GWSHIM_DIST:-$root/dist}
shipped() { ls "$dist"/gwshim-*-"$(uname -m)"-linux-musl.tar.gz 2>/dev/null | tail -n 1; }
if [ -z "$(shipped)" ]; then
	say "no $(uname -m) archive in $dist: running contrib/release.sh"
	GWSHIM_DIST=$dist GWSHIM_ARCHS=$(uname -m) "$root/contrib/release.sh" >&2
fi
archive=$(shipped)
(cd "$dist" && sha256sum -c --ignore-missing --quiet SHA256SUMS) >&2 || {
	say "$dist/SHA256SUMS does not match"
	exit 1
}
unpacked=$(mktemp -d)
trap 'rm -rf "$unpacked"' EXIT # until cleanup (below) takes over
tar -xzf "$archive" -C "$unpacked"
gw_dist=$(echo "$unpacked"/gwshim-*/gwshim)
is_static "$gw_dist" || {
	say "$gw_dist is not a static binary"
	exit 1
}
# --small (std rebuilt without its backtrace code) needs nightly with rust-src and musl; the
# column is left out, with a note, where they cannot be had.
say "building gwshim (static, --small)"
if command -v rustup >/dev/null && rustup toolchain list | grep -q '^nightly'; then
	rustup component add rust-src --toolchain nightly >/dev/null 2>&1 || true
	rustup target add x86_64-unknown-linux-musl --toolchain nightly >/dev/null 2>&1 || true
fi
gw_small=$(static_build --small) || {
	gw_small=
	say "no --small build (see above): its column is left out"
}

# --- the measurer and the floor --------------------------------------------------------
work=$(mktemp -d)
pids=()
cleanup() {
	# An interrupted idle test: TERM reaches each shim's sleeping child through the shim.
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	rm -rf "$work" "$unpacked"
}
trap cleanup EXIT
gcc -O2 -o "$work/measure" "$here/measure.c"
# The floor, static: with musl (the least a C program can cost) and with glibc.
floors=()
if musl-gcc -O2 -static -o "$work/floor-musl" "$here/floor.c" 2>/dev/null; then
	floors+=(floor-musl)
fi
if gcc -O2 -static -o "$work/floor-glibc" "$here/floor.c" 2>/dev/null; then
	floors+=(floor-glibc)
fi
[ ${#floors[@]} -gt 0 ] || {
	say "cannot build a static floor (musl-tools or libc6-dev)"
	exit 1
}
measure=$work/measure

# The subjects: a name, and the command line that runs a child under it.
names=(gwshim gwshim-dist gwshim-small tini tini-static dumb-init catatonit)
declare -A cmd=(
	[gwshim]="$gw_dyn --"
	[gwshim-dist]="$gw_dist --"
	[gwshim-small]="$gw_small --"
	[tini]="/usr/bin/tini -s --"
	[tini-static]="/usr/bin/tini-static -s --"
	[dumb-init]="/usr/bin/dumb-init"
	[catatonit]="/usr/bin/catatonit --"
)
drop() {
	local keep=() n
	for n in "${names[@]}"; do [ "$n" = "$1" ] || keep+=("$n"); done
	names=("${keep[@]}")
}
[ -x /usr/bin/tini-static ] || drop tini-static
[ -n "$gw_small" ] || drop gwshim-small
peers=()
for n in "${names[@]}"; do [[ $n == gwshim* ]] || peers+=("$n"); done

results=$work/results # lines: figure subject value
put() { echo "$1 $2 $3" >>"$results"; }

# --- 1. spawn to exit ------------------------------------------------------------------
say "spawn to exit: $runs runs of /bin/true under each"
specs=("true=/bin/true")
for f in "${floors[@]}"; do specs+=("$f=$work/$f /bin/true"); done
for n in "${names[@]}"; do specs+=("$n=${cmd[$n]} /bin/true"); done
"$measure" spawn "$runs" "${specs[@]}" >"$work/spawn"
# spawn NAME median p10 p90 mean failures cpu_median
while read -r _ n med p10 p90 _ fails cpu; do
	put spawn "$n" "$med"
	put spawn_cpu "$n" "$cpu"
	put spread "$n" "$p10-$p90"
	[ "$fails" = 0 ] || say "$n: $fails runs did not exit 0"
done <"$work/spawn"
true_med=$(awk '$2 == "true" {print $3}' "$work/spawn")
# the floor: the cheaper of the two
floor=$(awk '$2 ~ /^floor-/ && (b == "" || $3 + 0 < b + 0) {b = $3; n = $2} END {print n}' "$work/spawn")
floor_med=$(awk -v f="$floor" '$2 == f {print $3}' "$work/spawn")
while read -r _ n med _; do
	put overhead "$n" "$(awk -v a="$med" -v b="$true_med" 'BEGIN {printf "%.1f", a - b}')"
	put vsfloor "$n" "$(awk -v a="$med" -v b="$floor_med" 'BEGIN {printf "%.2f", a / b}')"
done <"$work/spawn"

# --- 2. idle cost ----------------------------------------------------------------------
say "idle: all shims at once, a sleeping child each, ${idle}s of counting, ${idle}s of strace"
declare -A pid
for n in "${names[@]}"; do
	# shellcheck disable=SC2086 # the command line is words
	${cmd[$n]} /bin/sleep 3600 </dev/null >/dev/null 2>&1 &
	pid[$n]=$!
	pids+=($!)
done
sleep 1
field() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
declare -A v0
for n in "${names[@]}"; do
	p=${pid[$n]}
	put rss "$n" "$(field "$p" VmRSS)"
	put pss "$n" "$(awk '$1 == "Pss:" {print $2}' "/proc/$p/smaps_rollup")"
	put anon "$n" "$(field "$p" RssAnon)"
	v0[$n]=$(($(field "$p" voluntary_ctxt_switches) + $(field "$p" nonvoluntary_ctxt_switches)))
done
sleep "$idle"
for n in "${names[@]}"; do
	p=${pid[$n]}
	v1=$(($(field "$p" voluntary_ctxt_switches) + $(field "$p" nonvoluntary_ctxt_switches)))
	put wakeups "$n" $((v1 - v0[$n]))
done
tracers=()
for n in "${names[@]}"; do
	timeout -s INT "$idle" strace -c -p "${pid[$n]}" -o "$work/strace.$n" 2>/dev/null &
	tracers+=($!)
done
for t in "${tracers[@]}"; do wait "$t" || true; done
for n in "${names[@]}"; do
	# strace -c writes nothing when it saw no syscall; the attach interrupts the blocking
	# call, which the kernel then restarts: restart_syscall is strace's own doing.
	calls=$(awk '$NF != "total" && $NF != "restart_syscall" && $4 ~ /^[0-9]+$/ {s += $4}
		END {print s + 0}' "$work/strace.$n" 2>/dev/null || echo 0)
	put syscalls "$n" "$calls"
	kill -TERM "${pid[$n]}" 2>/dev/null || true
done
for n in "${names[@]}"; do wait "${pid[$n]}" 2>/dev/null || true; done
pids=()

# --- 3. reaping ------------------------------------------------------------------------
say "reaping: $orphans orphans under each shim as pid 1 of a new pid namespace, $rounds rounds"
# Rounds interleave the shims; each figure is the median of the rounds.
for ((r = 0; r < rounds; r++)); do
	for n in "${names[@]}"; do
		# shellcheck disable=SC2086
		unshare --pid --fork --mount-proc ${cmd[$n]} "$measure" orphans "$orphans" 2>/dev/null |
			sed -n "s/^reap /$n /p" >>"$work/reap" || true
	done
done
median() { sort -n | awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]; else print "-"}'; }
for n in "${names[@]}"; do
	# NAME total_us drain_us shim_cpu_us max_zombies max_unreaped
	col() { awk -v n="$n" -v c="$1" '$1 == n {print $c}' "$work/reap" | median; }
	put reap_total "$n" "$(col 2 | awk '{printf "%.0f", $1 / 1000}')"
	put reap_drain "$n" "$(col 3)"
	put reap_cpu "$n" "$(col 4 | awk '{printf "%.1f", $1 / 1000}')"
	put zombies "$n" "$(col 5)"
done

# --- 4. signal forwarding --------------------------------------------------------------
# Many short rounds: the machine's wake-up latency drifts, and each shim must see the same.
say "signals: $signals SIGUSR2 to each shim, one at a time, in $sig_rounds interleaved rounds"
for ((r = 0; r < sig_rounds; r++)); do
	MEASURE_RAW=$work/raw.direct "$measure" signals $((signals / sig_rounds)) direct >/dev/null
	for n in "${names[@]}"; do
		# shellcheck disable=SC2086
		MEASURE_RAW=$work/raw.$n "$measure" signals $((signals / sig_rounds)) "$n" ${cmd[$n]} |
			awk '$6 != 0 {print "bench: " $2 ": " $6 " signals never reached the child"}' >&2
	done
done
# pooled over the rounds: median and p99, in µs
pooled() { sort -n "$work/raw.$1" | awk -v p="$2" '{v[NR] = $1}
	END {i = int(p / 100 * (NR - 1) + 0.5) + 1; printf "%.1f", v[i] / 1000}'; }
for n in direct "${names[@]}"; do
	put sig_med "$n" "$(pooled "$n" 50)"
	put sig_p99 "$n" "$(pooled "$n" 99)"
done

# --- 5. binaries -----------------------------------------------------------------------
for n in "${names[@]}"; do
	b=${cmd[$n]%% *}
	put size "$n" "$(awk -v s="$(stat -L -c %s "$b")" 'BEGIN {printf "%.1f", s / 1000}')"
	libs=$(readelf -d "$b" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | paste -sd, -)
	put libs "$n" "${libs:-none}"
done

# --- the table -------------------------------------------------------------------------
version() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo unknown; }
cat <<EOF
## gwshim against tini, dumb-init and catatonit

- date: $(date -u '+%Y-%m-%d %H:%M UTC')
- machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), kernel $(uname -r), load average before the run: $load
- peers (Debian packages): tini $(version tini), dumb-init $(version dumb-init), catatonit $(version catatonit)
- gwshim: $(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown), $(rustc --version); shipped: ${archive#"$root"/}${gw_small:+, ${gw_small#"$root"/} (--small, $(rustup run nightly rustc --version))}
- runs: $runs spawns each; $signals signals each, in $sig_rounds rounds; $orphans orphans each, $rounds rounds (medians); ${idle} s idle windows

References, same run: $(awk '$2 == "true" || $2 ~ /^floor-/ {printf "%s%s **%s µs** median (%s µs CPU)", sep, ($2 == "true" ? "bare `/bin/true`" : $2 " (static C: fork, exec, wait)"), $3, $8; sep = "; "}' "$work/spawn"). The floor below is $floor. A signal sent straight to the child, no shim: **$(awk '$1 == "sig_med" && $2 == "direct" {print $3}' "$results") µs** median, $(awk '$1 == "sig_p99" && $2 == "direct" {print $3}' "$results") µs p99.

Lower is better everywhere. In brackets: the ratio to the best peer (the lowest of ${peers[*]}).

EOF
awk -v names="${names[*]}" -v peers="${peers[*]}" '
	{ v[$1, $2] = $3 }
	function row(fig, label, ratio,    i, best, p, x, line) {
		best = ""
		for (i = 1; i <= np; i++) {
			x = v[fig, P[i]]
			if (x ~ /^[0-9.]+$/ && (best == "" || x + 0 < best + 0)) best = x
		}
		line = "| " label
		for (i = 1; i <= nn; i++) {
			x = v[fig, N[i]]
			if (x == "") x = "-"
			if (ratio && x ~ /^[0-9.]+$/ && best != "") {
				if (best + 0 > 0) x = x " (" sprintf("%.2fx", x / best) ")"
				else if (x + 0 == 0) x = x " (=)"
			}
			line = line " | " x
		}
		print line " |"
	}
	END {
		nn = split(names, N, " "); np = split(peers, P, " ")
		hdr = "| figure"; sep = "|---"
		for (i = 1; i <= nn; i++) { hdr = hdr " | " N[i]; sep = sep "|---" }
		print hdr " |"; print sep "|"
		row("spawn", "1. spawn to exit, median (µs)", 1)
		row("spread", "1. spawn to exit, p10-p90 (µs)", 0)
		row("overhead", "1. overhead over bare /bin/true (µs)", 1)
		row("vsfloor", "1. spawn to exit / the floor", 0)
		row("spawn_cpu", "1. CPU time (user+sys, shim and child), median (µs)", 1)
		row("rss", "2. idle RSS (KiB)", 1)
		row("pss", "2. idle PSS (KiB)", 1)
		row("anon", "2. idle private memory, RssAnon (KiB)", 1)
		row("wakeups", "2. idle context switches in the window", 1)
		row("syscalls", "2. idle syscalls in the window (strace)", 1)
		row("reap_total", "3. make and reap the orphans (ms)", 1)
		row("reap_drain", "3. last orphan made to all reaped (µs)", 1)
		row("reap_cpu", "3. shim CPU time while reaping (ms)", 1)
		row("zombies", "3. most zombies seen at once", 1)
		row("sig_med", "4. signal latency, median (µs)", 1)
		row("sig_p99", "4. signal latency, p99 (µs)", 1)
		row("size", "5. binary size (kB)", 1)
		row("libs", "5. shared libraries needed", 0)
	}' "$results"
