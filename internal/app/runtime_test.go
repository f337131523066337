package app

import (
	"runtime/debug"
	"testing"
)

// TestTuneRuntime: without GOGC the handler runs at DefaultGCPercent; an
// operator's GOGC is left as the runtime read it.
func TestTuneRuntime(t *testing.T) {
	was := debug.SetGCPercent(100)
	defer debug.SetGCPercent(was)
	if p := TuneRuntime(func(string) (string, bool) { return "", false }); p != DefaultGCPercent {
		t.Fatalf("without GOGC: %d", p)
	}
	if p := debug.SetGCPercent(70); p != DefaultGCPercent {
		t.Fatalf("collector target %d, want %d", p, DefaultGCPercent)
	}
	// GOGC=70 as the runtime would have applied it at start.
	if p := TuneRuntime(func(k string) (string, bool) { return "70", k == "GOGC" }); p != 70 {
		t.Fatalf("with GOGC=70: %d", p)
	}
	if p := debug.SetGCPercent(100); p != 70 {
		t.Fatalf("GOGC changed to %d", p)
	}
}
