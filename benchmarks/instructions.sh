#!/bin/sh
# instructions.sh counts, with callgrind, the instructions per message
# that the GoChannel router pipelines spend in wmprom's own functions and
# in the floor's (floor_test.go: the bare recording), for hooks, floor and
# wmprom. Instructions are not time, but these counts come out the same
# from run to run whatever the machine is doing, where a 3% difference in
# time is lost in this VM's noise. (The pipeline's total is not printed:
# it depends on how valgrind, which runs one thread at a time, schedules
# the runtime's spinning threads, and moves by half from run to run.)
#
#   sh benchmarks/instructions.sh [out=dropped|consumed, default consumed]
#
# Each variant runs twice, with 10,000 and 30,000 messages; the difference
# divided by 20,000 is the cost per message, without the start and stop.
# A function's own instructions count, not those of the runtime functions
# it calls (channel selects, map look-ups, mutexes, the clock); the last
# lines list wmprom's functions by instructions per message. Needs valgrind; takes
# about 10 minutes.
set -eu
out=${1:-consumed}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go test -c -o "$bin/benchmarks.test" ./benchmarks/

# self prints "function<TAB>own instructions" for every function of a
# callgrind profile.
self() {
	callgrind_annotate --threshold=100 --inclusive=no --auto=no "$1" 2>/dev/null | awk '
		/PROGRAM TOTALS/ { next }
		/^ *[0-9,]+ / {
			n = $1; gsub(",", "", n)
			fn = $0; sub(/^[^:]*:/, "", fn); sub(/ \[.*$/, "", fn)
			s[fn] += n
		}
		END { for (f in s) printf "%s\t%d\n", f, s[f] }' | sort
}

for instr in hooks floor wmprom; do
	for n in 10000 30000; do
		# Go's asynchronous preemption signals confuse valgrind.
		(cd benchmarks && GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind \
			--callgrind-out-file="$bin/$instr.$n.out" "$bin/benchmarks.test" -test.run '^$' \
			-test.bench "^BenchmarkRouterGoChannel\$/^out=$out\$/^instr=$instr\$" \
			-test.benchtime "${n}x" >/dev/null 2>&1)
		self "$bin/$instr.$n.out" >"$bin/$instr.$n.txt"
	done
	join -t "$(printf '\t')" "$bin/$instr.10000.txt" "$bin/$instr.30000.txt" |
		awk -F '\t' '{ print $1 "\t" ($3 - $2) / 20000 }' >"$bin/$instr.txt"
	awk -F '\t' -v i="$instr" -v o="$out" '
		$1 ~ /^github.com\/wmprom\/wmprom\.[^\/]/ { lib += $2 }
		$1 ~ /benchmarks\.(\(\*)?floor/ { floor += $2 }
		END { printf "out=%s\tinstr=%s\twmprom %.0f\tfloor %.0f instructions per message\n", o, i, lib, floor }' "$bin/$instr.txt"
done
echo
echo "wmprom's functions, own instructions per message:"
awk -F '\t' '$1 ~ /^github.com\/wmprom\/wmprom\.[^\/]/ && $2 >= 0.5 {
	sub(/^github.com\/wmprom\/wmprom\./, "", $1); printf "%8.1f  %s\n", $2, $1 }' "$bin/wmprom.txt" | sort -gr
