#!/bin/sh
# run.sh runs every benchmark of wmprom the way BENCHMARKS.md reports
# them and prints the benchstat tables. Run it from the repository root on
# a quiet machine; it takes about 20 minutes on 2 cores.
#
#   sh benchmarks/run.sh [output directory, default benchmarks/results]
#
# benchstat: go install golang.org/x/perf/cmd/benchstat@latest
#
# Each round runs every benchmark once, and there are ROUNDS rounds
# (default 10): with -count 10 the ten runs of one variant would come one
# after the other, so a burst of load from another process would land on
# one variant and pass for a difference between variants. Interleaved,
# it spreads over all of them. The end-to-end variants also take turns
# at running first.
#
# BEFORE=rev also runs the cardinality benchmarks of this tree against
# the library at commit rev, in the same rounds, into
# cardinality-before.txt (rev in before-commit.txt): a before and after
# measured together.
#
# TABLES_ONLY=1 prints the tables of an earlier run without running
# anything.
set -eu
out=${1:-benchmarks/results}
rounds=${ROUNDS:-10}
benchstat=${BENCHSTAT:-$(go env GOPATH)/bin/benchstat}
root=$(pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT

# machine records the load: the load averages, and a one-second top
# sample of the CPU and of the three busiest processes.
machine() {
	echo "== $1: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
	top -b -n 2 -d 1 -o %CPU -w 120 | awk '/^top -/ { n++ } n == 2' | sed -n '3p;8,10p'
}

# rotate prints its arguments after the first, rotated left by n-1.
rotate() {
	n=$(($1 - 1))
	shift
	n=$((n % $#))
	i=0
	for arg in "$@"; do
		if [ "$i" -ge "$n" ]; then printf '%s\n' "$arg"; fi
		i=$((i + 1))
	done
	i=0
	for arg in "$@"; do
		if [ "$i" -lt "$n" ]; then printf '%s\n' "$arg"; fi
		i=$((i + 1))
	done
}

if [ -z "${TABLES_ONLY:-}" ]; then
	go test -c -o "$bin/hotpath.test" .
	go test -c -o "$bin/benchmarks.test" ./benchmarks/
	if [ -n "${BEFORE:-}" ]; then
		# This tree's benchmarks module, built against the library at BEFORE.
		git worktree add --detach "$bin/before" "$BEFORE" >/dev/null
		rm -rf "$bin/before/benchmarks"
		cp -R benchmarks go.work "$bin/before/"
		(cd "$bin/before/benchmarks" && go test -c -o "$bin/before.test" .)
		git worktree remove --force "$bin/before"
		# benchstat would read a "key: value" line in the results as a
		# configuration key, and no longer pair before with after.
		git rev-parse --short "$BEFORE" >"$out/before-commit.txt"
		: >"$out/cardinality-before.txt"
	fi
	{
		echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- ':(glob)*.go' ':(glob)benchmarks/*.go' || echo ' (with uncommitted changes)')"
		echo "cores: $(nproc); $(grep -m1 'model name' /proc/cpuinfo | sed 's/[[:space:]]*:[[:space:]]*/: /')"
		go version
		machine start
	} >"$out/machine.txt"
	: >"$out/hotpath.txt"
	: >"$out/endtoend.txt"
	: >"$out/cardinality.txt"

	for i in $(seq "$rounds"); do
		# Hot path: middleware and publisher decorator (root package).
		(cd "$root" && "$bin/hotpath.test" -test.run '^$' -test.bench . -test.benchmem) | tee -a "$out/hotpath.txt"
		# Router end to end on GoChannel, NATS JetStream and Redis streams.
		# One variant at a time, in an order that rotates from round to
		# round: in a fixed order, whatever drifts during a round (the
		# Redis benchmark does) would pass for a difference between
		# variants.
		# (A pattern names as many levels as the benchmark has, or the
		# benchmark does not run: hence one pattern per depth.)
		# floor (the bare recording, floor_test.go) is a GoChannel setup only.
		for instr in $(rotate "$i" none hooks floor wmprom watermill); do
			for pattern in "^BenchmarkRouterGoChannel\$/./^instr=$instr\$" "^BenchmarkBroker/^instr=$instr\$"; do
				(cd "$root/benchmarks" && "$bin/benchmarks.test" -test.run '^$' -test.benchmem -test.bench "$pattern") |
					tee -a "$out/endtoend.txt"
			done
		done
		# Cardinality, in 6 of the rounds: one scrape of 10,000 handlers
		# takes a second, and 6 runs are what benchstat needs for a spread.
		if [ "$i" -le 6 ]; then
			(cd "$root/benchmarks" && "$bin/benchmarks.test" -test.run '^$' -test.bench 'Cardinality' -test.benchmem) | tee -a "$out/cardinality.txt"
			if [ -n "${BEFORE:-}" ]; then
				(cd "$root/benchmarks" && "$bin/before.test" -test.run '^$' -test.bench 'Cardinality(Steady|Fresh|Scrape)' -test.benchmem) | tee -a "$out/cardinality-before.txt"
			fi
		fi
		machine "after round $i" >>"$out/machine.txt"
	done
fi

{
	cat "$out/machine.txt"
	echo
	echo "### Hot path"
	"$benchstat" "hot path=$out/hotpath.txt"
	echo
	echo "### End to end, against no instrumentation"
	"$benchstat" -col '/instr@(none hooks wmprom watermill)' "$out/endtoend.txt"
	echo
	echo "### End to end, throughput ratios of the same round"
	awk -f "$root/benchmarks/ratios.awk" "$out/endtoend.txt" |
		sort -t "$(printf '\t')" -k1,1 -k2,2 -k3,3g | awk -f "$root/benchmarks/median.awk"
	echo
	echo "### End to end, wmprom against the do-nothing hooks"
	"$benchstat" -col '/instr@(hooks wmprom)' -filter '.unit:(sec/op OR msgs/s OR cpu-ns/op OR allocs/op)' "$out/endtoend.txt"
	echo
	echo "### GoChannel, wmprom against the floor (the bare recording) and the hooks"
	"$benchstat" -col '/instr@(hooks floor wmprom)' -filter '.name:RouterGoChannel .unit:(sec/op OR cpu-ns/op OR allocs/op)' "$out/endtoend.txt"
	echo
	echo "### End to end, wmprom against Watermill's metrics"
	"$benchstat" -col '/instr@(watermill wmprom)' -filter '.unit:(sec/op OR msgs/s)' "$out/endtoend.txt"
	echo
	echo "### Cardinality, steady state, against 10 handlers"
	"$benchstat" -col /series -filter '.name:/^Cardinality(Steady|Fresh|Hot)$/ .unit:sec/op' "$out/cardinality.txt"
	echo
	echo "### Cardinality, ratios to 10 handlers in the same round"
	awk -f "$root/benchmarks/cardinality.awk" "$out/cardinality.txt" |
		sort -t "$(printf '\t')" -k1,1 -k2,2 -k3,3g | awk -v unit=ns/op -f "$root/benchmarks/median.awk"
	echo
	echo "### Cardinality, creating the series"
	"$benchstat" -col /series -filter '.name:CardinalityCreate (.unit:sec/handler OR .unit:B/handler OR .unit:B/sample OR .unit:samples/handler)' "$out/cardinality.txt"
	echo
	echo "### Cardinality, one /metrics scrape"
	"$benchstat" -col /series -filter '.name:CardinalityScrape (.unit:sec/op OR .unit:sec/sample OR .unit:bytes/scrape OR .unit:B/op)' "$out/cardinality.txt"
	if [ -s "$out/cardinality-before.txt" ]; then
		echo
		echo "### Cardinality, before ($(cat "$out/before-commit.txt")) and after, wmprom only"
		"$benchstat" -filter '/instr:wmprom .unit:(sec/op OR B/op OR allocs/op)' \
			"before=$out/cardinality-before.txt" "after=$out/cardinality.txt"
		echo
		echo "### Cardinality, before, ratios to 10 handlers in the same round"
		awk -f "$root/benchmarks/cardinality.awk" "$out/cardinality-before.txt" |
			sort -t "$(printf '\t')" -k1,1 -k2,2 -k3,3g | awk -v unit=ns/op -f "$root/benchmarks/median.awk"
	fi
} >"$out/tables.txt"
cat "$out/tables.txt"
