# median.awk reads "benchmark<TAB>ratio name<TAB>value" lines sorted by
# benchmark, ratio name and value (ratios.awk's, after sort), and prints
# one line per benchmark and ratio: the median, the lowest and the highest
# value, and their count.
BEGIN {
	FS = "\t"
	printf "%-44s %-16s %7s %7s %7s %3s\n", "benchmark", "time ratio", "median", "min", "max", "n"
}
function flush() {
	if (n == 0)
		return
	m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	printf "%-44s %-16s %7.3f %7.3f %7.3f %3d\n", key1, key2, m, v[1], v[n], n
	n = 0
}
$1 != key1 || $2 != key2 { flush(); key1 = $1; key2 = $2 }
{ v[++n] = $3 }
END { flush() }
