// Package memtest measures memory in tests and benchmarks.
package memtest

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// PeakHeap samples the heap every millisecond until stop is called and
// returns the peak above the starting heap. GOGC is 5 meanwhile, so the
// heap stays close to what is live (garbage would otherwise dominate).
func PeakHeap() (stop func() uint64) {
	gc := debug.SetGCPercent(5)
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	base := s[0].Value.Uint64()
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > base && v-base > peak.Load() {
				peak.Store(v - base)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		debug.SetGCPercent(gc)
		return peak.Load()
	}
}
