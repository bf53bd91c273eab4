# ratios.awk pairs the end-to-end benchmarks run in the same round and
# prints, for each benchmark, the median, lowest and highest ratio of
# throughputs (msgs/s) over the rounds: hooks/none (the cost of hooking
# in at all), wmprom/hooks (the cost of recording), wmprom/none,
# watermill/none and wmprom/watermill, and on GoChannel floor/hooks (the
# cost of the bare recording, floor_test.go) and wmprom/floor. Pairing by
# round cancels what a round's load does to all variants alike. Input:
# the output of interleaved rounds (run.sh).
#
#   awk -f benchmarks/ratios.awk benchmarks/results/endtoend.txt
/^Benchmark(Router|Broker)/ {
	name = $1
	sub(/-[0-9]+$/, "", name)
	instr = name
	sub(/.*instr=/, "", instr)
	bench = name
	sub(/\/instr=[^\/]*/, "", bench)
	sub(/^Benchmark/, "", bench)
	for (i = 3; i < NF; i++)
		if ($(i + 1) == "msgs/s")
			v = $i
	runs[bench, instr]++
	val[bench, instr, runs[bench, instr]] = v
	benches[bench] = 1
}
END {
	np = split("hooks none wmprom hooks wmprom none watermill none wmprom watermill floor hooks wmprom floor", pair, " ")
	for (b in benches)
		for (p = 1; p < np; p += 2)
			for (r = 1; (b, pair[p], r) in val && (b, pair[p + 1], r) in val; r++)
				printf "%s\t%s/%s\t%.4f\n", b, pair[p], pair[p + 1], val[b, pair[p], r] / val[b, pair[p + 1], r]
}
