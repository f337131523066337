package logtest

import (
	"sync"
	"testing"
)

func TestBufferConcurrentRecords(t *testing.T) {
	log, b := New()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() { log.Info("hello", "i", i) })
	}
	wg.Wait()
	log.Warn("other")
	if got := len(b.Records("hello")); got != 20 {
		t.Fatalf("Records(hello) = %d, want 20", got)
	}
	if r := b.Records("other"); len(r) != 1 || r[0]["level"] != "WARN" {
		t.Fatalf("Records(other) = %v", r)
	}
	if len(b.Records("missing")) != 0 || b.String() == "" {
		t.Fatal("String/Records disagree with what was logged")
	}
}
