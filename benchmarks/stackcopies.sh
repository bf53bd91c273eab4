#!/bin/sh
# stackcopies.sh counts the goroutine stack copies (runtime.copystack) per
# message of the GoChannel router pipelines, for each instrumentation. The
# router runs every message on a goroutine of its own, whose stack starts
# small: a middleware whose frames push that goroutine over its first
# stack size costs it a copy per message, more than what it records.
# Compare wmprom's line with hooks' (the do-nothing baseline) and the
# floor's (the bare recording, floor_test.go).
#
#   sudo sh benchmarks/stackcopies.sh [messages, default 100000]
#
# Needs perf with uprobes (Debian: linux-perf) and root. One P
# (GOMAXPROCS=1) keeps the count free of scheduling noise; the count, not
# the time, is the result.
set -eu
n=${1:-100000}
bin=$(mktemp -d)
trap 'perf probe -q -d "probe_wmprom:*" 2>/dev/null || true; rm -rf "$bin"' EXIT
go test -c -o "$bin/benchmarks.test" ./benchmarks/
perf probe -q -x "$bin/benchmarks.test" -a 'probe_wmprom:copystack=runtime.copystack'
for out in dropped consumed; do
	for instr in none hooks floor wmprom watermill; do
		count=$(cd benchmarks && GOMAXPROCS=1 perf stat -x, -e probe_wmprom:copystack \
			"$bin/benchmarks.test" -test.run '^$' \
			-test.bench "RouterGoChannel/out=$out/instr=$instr\$" -test.benchtime "${n}x" 2>&1 >/dev/null |
			awk -F, '/probe_wmprom/ { print $1 }')
		awk -v o="$out" -v i="$instr" -v c="$count" -v n="$n" \
			'BEGIN { printf "out=%s\tinstr=%s\t%.3f stack copies per message\n", o, i, c / n }'
	done
done
