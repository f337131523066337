package app

import "runtime/debug"

// DefaultGCPercent is the garbage collector's target the handler runs with
// unless the environment sets GOGC (Go's own variable). A backup's or
// restore's heap is mostly a few dozen recycled chunk buffers, which hold
// no pointers, so the collector marks little and running it more often
// costs next to no CPU; with Go's default of 100 the heap may grow to twice
// that live set before a collection. Measured on issue 13's benchmark
// (docs/BENCHMARKS.md): peak RSS of a restore 137 → 114 MiB and of a
// backup 116 → 89 MiB, throughput unchanged.
const DefaultGCPercent = 25

// TuneRuntime applies DefaultGCPercent unless lookup (os.LookupEnv) has
// GOGC, which the runtime then honours itself. It reports the percent in
// effect. Call it once, first thing in main.
func TuneRuntime(lookup func(string) (string, bool)) int {
	if _, ok := lookup("GOGC"); ok {
		p := debug.SetGCPercent(100)
		debug.SetGCPercent(p)
		return p
	}
	debug.SetGCPercent(DefaultGCPercent)
	return DefaultGCPercent
}
