#!/bin/sh
# run.sh runs the benchmarks that BENCHMARKS.md reports and prints their
# tables. Run it from the repository root; about 16 minutes on 2 vCPUs.
#
#   BEFORE=7fff2ca sh benchmarks/run.sh [output directory, default benchmarks/results]
#
# benchstat: go install golang.org/x/perf/cmd/benchstat@latest
#
# Each round runs every benchmark once, and there are ROUNDS rounds
# (default 10). With -count 10 the ten runs of one variant would come one
# after the other, so a burst of load from another process would land on
# one variant and pass for a difference between variants; interleaved, it
# spreads over all of them, and the ratios are taken within a round. The
# GoChannel variants also take turns at running first.
#
# BEFORE=rev also runs the cardinality benchmarks of this tree against the
# library at commit rev, in the same rounds, into cardinality-before.txt
# (rev in before-commit.txt): a before and after measured together.
#
# BROKERS=1 adds the router on NATS JetStream and Redis streams
# (BenchmarkBroker), which needs redis-server on PATH and doubles the run.
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

# The cardinality benchmarks reported: 10 and 10,000 busy handlers, and a
# scrape of 1,000 and 10,000 handlers' series.
steady='^BenchmarkCardinalitySteady$/^series=(10|10000)$/^instr=(floor|wmprom)$'
steady_before='^BenchmarkCardinalitySteady$/^series=(10|10000)$/^instr=wmprom$'
scrape='^BenchmarkCardinalityScrape$/^series=(1000|10000)$/^instr=wmprom$'

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
	(cd benchmarks && go test -c -o "$bin/benchmarks.test" .)
	rm -f "$out/before-commit.txt" "$out/cardinality-before.txt"
	if [ -n "${BEFORE:-}" ]; then
		# This tree's benchmarks module, built against the library at BEFORE.
		mkdir "$bin/before"
		git archive "$BEFORE" | tar -x -C "$bin/before"
		rm -rf "$bin/before/benchmarks"
		cp -R benchmarks "$bin/before/"
		# A workspace of the two modules alone: this tree's go.work names
		# modules that BEFORE may not have.
		(cd "$bin/before" && rm -f go.work go.work.sum && go work init . ./benchmarks)
		(cd "$bin/before/benchmarks" && go test -c -o "$bin/before.test" .)
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
		# Middleware and publisher decorator alone (root package).
		(cd "$root" && "$bin/hotpath.test" -test.run '^$' -test.bench '^Benchmark(Middleware|Publisher)$' -test.benchmem) |
			tee -a "$out/hotpath.txt"
		# The router end to end, one variant at a time, in an order that
		# rotates from round to round. (A pattern names as many levels as
		# the benchmark has, or the benchmark does not run: hence one
		# pattern per depth.) floor is a GoChannel setup only.
		for instr in $(rotate "$i" none hooks floor wmprom watermill); do
			patterns="^BenchmarkRouterGoChannel\$/./^instr=$instr\$"
			if [ -n "${BROKERS:-}" ]; then
				patterns="$patterns ^BenchmarkBroker/^instr=$instr\$"
			fi
			for pattern in $patterns; do
				(cd "$root/benchmarks" && "$bin/benchmarks.test" -test.run '^$' -test.benchmem -test.bench "$pattern") |
					tee -a "$out/endtoend.txt"
			done
		done
		# Cardinality, after and before in turn.
		for pattern in "$steady" "$scrape"; do
			(cd "$root/benchmarks" && "$bin/benchmarks.test" -test.run '^$' -test.benchmem -test.bench "$pattern") |
				tee -a "$out/cardinality.txt"
		done
		if [ -n "${BEFORE:-}" ]; then
			for pattern in "$steady_before" "$scrape"; do
				(cd "$root/benchmarks" && "$bin/before.test" -test.run '^$' -test.benchmem -test.bench "$pattern") |
					tee -a "$out/cardinality-before.txt"
			done
		fi
		machine "after round $i" >>"$out/machine.txt"
	done
fi

ratios() {
	awk -v pairs="$1" -f "$root/benchmarks/ratios.awk" |
		sort -t "$(printf '\t')" -k1,1 -k2,2 -k3,3g | awk -f "$root/benchmarks/median.awk"
}

{
	cat "$out/machine.txt"
	echo
	echo "### Middleware and publisher decorator, over the rounds"
	awk -f "$root/benchmarks/spread.awk" "$out/hotpath.txt"
	echo
	echo "### Middleware and publisher decorator, time ratios of the same round"
	ratios "wmprom/watermill wmprom/none" <"$out/hotpath.txt"
	echo
	echo "### GoChannel pipeline, over the rounds"
	awk -f "$root/benchmarks/spread.awk" "$out/endtoend.txt"
	echo
	echo "### GoChannel pipeline, time ratios of the same round"
	ratios "wmprom/hooks wmprom/floor floor/hooks hooks/none wmprom/none watermill/none wmprom/watermill" <"$out/endtoend.txt"
	echo
	echo "### GoChannel pipeline, benchstat"
	"$benchstat" -col '/instr@(none hooks floor wmprom watermill)' -filter '.unit:(sec/op OR cpu-sec/op OR allocs/op)' "$out/endtoend.txt"
	echo
	echo "### Cardinality, over the rounds"
	awk -f "$root/benchmarks/spread.awk" "$out/cardinality.txt"
	if [ -s "$out/cardinality-before.txt" ]; then
		echo
		echo "### Cardinality, before ($(cat "$out/before-commit.txt")), over the rounds"
		awk -f "$root/benchmarks/spread.awk" "$out/cardinality-before.txt"
		echo
		echo "### Cardinality, after/before time ratios of the same round"
		{
			sed -E 's#^(Benchmark[^[:space:]]*)-([0-9]+)#\1/after-\2#' "$out/cardinality.txt"
			sed -E 's#^(Benchmark[^[:space:]]*)-([0-9]+)#\1/before-\2#' "$out/cardinality-before.txt"
		} | ratios "after/before"
		echo
		echo "### Cardinality, before and after, benchstat"
		"$benchstat" -filter '/instr:wmprom .unit:(sec/op OR B/op OR allocs/op)' \
			"before=$out/cardinality-before.txt" "after=$out/cardinality.txt"
	fi
} >"$out/tables.txt"
cat "$out/tables.txt"
