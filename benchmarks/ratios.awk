# ratios.awk pairs benchmarks run in the same round and prints, for each
# benchmark and each pair a/b of variants named in pairs, one line per
# round with the ratio of their times (ns/op): above 1, a is slower.
# Pairing by round cancels what a round's load does to all variants
# alike. The variant is the last element of a benchmark's name, without
# its "instr=". Output lines go to median.awk, after sorting. Input: the
# output of interleaved rounds (run.sh).
#
#   awk -v pairs="wmprom/hooks wmprom/floor" -f benchmarks/ratios.awk benchmarks/results/endtoend.txt
/^Benchmark/ {
	name = $1
	sub(/-[0-9]+$/, "", name)
	variant = name
	sub(/.*\//, "", variant)
	sub(/^instr=/, "", variant)
	bench = name
	sub(/\/[^\/]*$/, "", bench)
	sub(/^Benchmark/, "", bench)
	for (i = 3; i < NF; i++)
		if ($(i + 1) == "ns/op")
			v = $i
	runs[bench, variant]++
	val[bench, variant, runs[bench, variant]] = v
	benches[bench] = 1
}
END {
	np = split(pairs, pair, " ")
	for (b in benches)
		for (p = 1; p <= np; p++) {
			split(pair[p], ab, "/")
			for (r = 1; (b, ab[1], r) in val && (b, ab[2], r) in val; r++)
				printf "%s\t%s\t%.4f\n", b, pair[p], val[b, ab[1], r] / val[b, ab[2], r]
		}
}
