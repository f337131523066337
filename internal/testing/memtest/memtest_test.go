package memtest

import "testing"

var sink [][]byte

// PeakHeap sees an allocation made and dropped while it samples.
func TestPeakHeapSeesAllocation(t *testing.T) {
	stop := PeakHeap()
	for range 64 {
		sink = append(sink, make([]byte, 1<<20))
	}
	n := len(sink)
	sink = nil
	if peak := stop(); n != 64 || peak < 32<<20 {
		t.Fatalf("peak %d B after holding 64 MiB, want at least 32 MiB", peak)
	}
}
