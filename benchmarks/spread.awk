# spread.awk prints, for each benchmark of interleaved rounds (run.sh),
# the median, lowest and highest of its unit (default ns/op) over the
# rounds, its median allocs/op and the number of rounds.
#
#   awk -v unit=ns/op -f benchmarks/spread.awk benchmarks/results/endtoend.txt
BEGIN {
	if (unit == "")
		unit = "ns/op"
	printf "%-52s %14s %14s %14s %9s %3s\n", "benchmark", unit " median", "min", "max", "allocs/op", "n"
}
/^Benchmark/ {
	name = $1
	sub(/-[0-9]+$/, "", name)
	sub(/^Benchmark/, "", name)
	if (!(name in n))
		order[++names] = name
	n[name]++
	for (i = 3; i < NF; i++) {
		if ($(i + 1) == unit)
			v[name, n[name]] = $i
		if ($(i + 1) == "allocs/op")
			a[name, n[name]] = $i
	}
}
function median(k, arr, m,   i, j, t, x) {
	for (i = 1; i <= m; i++)
		x[i] = arr[k, i] + 0
	for (i = 2; i <= m; i++)
		for (j = i; j > 1 && x[j] < x[j - 1]; j--) {
			t = x[j]; x[j] = x[j - 1]; x[j - 1] = t
		}
	lo = x[1]
	hi = x[m]
	return (m % 2) ? x[(m + 1) / 2] : (x[m / 2] + x[m / 2 + 1]) / 2
}
END {
	for (o = 1; o <= names; o++) {
		k = order[o]
		med = median(k, v, n[k])
		l = lo
		h = hi
		printf "%-52s %14.1f %14.1f %14.1f %9d %3d\n", k, med, l, h, median(k, a, n[k]), n[k]
	}
}
