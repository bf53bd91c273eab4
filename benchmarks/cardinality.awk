# cardinality.awk pairs the cardinality benchmarks run in the same round
# and prints, for CardinalitySteady, CardinalityFresh and CardinalityHot,
# the ratio of ns/op at 1,000 and 10,000 handlers to ns/op at 10, for
# each instrumentation; and "added", the same ratio of what an
# instrumentation adds to the uninstrumented run of that round
# (instr - none). Output lines go to median.awk, after sorting, as
# ratios.awk's do. Input: the output of interleaved rounds (run.sh).
#
#   awk -f benchmarks/cardinality.awk benchmarks/results/cardinality.txt
/^BenchmarkCardinality(Steady|Fresh|Hot)\// {
	name = $1
	sub(/-[0-9]+$/, "", name)
	split(name, part, "/")
	bench = part[1]
	sub(/^Benchmark/, "", bench)
	series = part[2]
	sub(/^series=/, "", series)
	instr = part[3]
	sub(/^instr=/, "", instr)
	for (i = 3; i < NF; i++)
		if ($(i + 1) == "ns/op")
			v = $i
	runs[bench, series, instr]++
	val[bench, series, instr, runs[bench, series, instr]] = v
	benches[bench] = 1
	sizes[series] = 1
	instrs[instr] = 1
}
END {
	for (b in benches)
		for (n in sizes) {
			if (n == 10)
				continue
			for (in_ in instrs)
				for (r = 1; (b, n, in_, r) in val && (b, 10, in_, r) in val; r++)
					printf "%s/%s\tx%s/x10\t%.4f\n", b, in_, n, val[b, n, in_, r] / val[b, 10, in_, r]
			for (in_ in instrs) {
				if (in_ == "none")
					continue
				for (r = 1; (b, n, in_, r) in val && (b, 10, in_, r) in val && (b, n, "none", r) in val && (b, 10, "none", r) in val; r++)
					printf "%s/%s\tadded x%s/x10\t%.4f\n", b, in_, n, (val[b, n, in_, r] - val[b, n, "none", r]) / (val[b, 10, in_, r] - val[b, 10, "none", r])
			}
		}
}
