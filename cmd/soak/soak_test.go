package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// testWriter sends log lines to t.Log, shown for a failing test.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestSoakKeepsTheInvariants is a small kill -9 soak: two tenants, four
// SIGKILLs of the real handler while backups and restores run. However the
// kills land, no completed backup may fail verification, nothing may
// complete twice, and every succeeded restore's target must equal its
// source.
func TestSoakKeepsTheInvariants(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	f, err := Run(ctx, Options{Tenants: 2, Kills: 4, Seed: 7, Records: 40, Files: 3, FileSize: 300 << 10,
		MinGap: time.Second, MaxGap: 3 * time.Second, Drain: 3 * time.Minute, SweepGrace: 20 * time.Second,
		Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	var table strings.Builder
	if f != nil {
		f.Print(&table)
		t.Log("\n" + table.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	if v := f.Violations(); len(v) > 0 {
		t.Errorf("invariants broken: %v", v)
	}
	if f.Kills != 4 || f.HandlerStarts != f.Kills+1 {
		t.Errorf("kills %d, handler starts %d; want 4 kills, each followed by a restart", f.Kills, f.HandlerStarts)
	}
	// A killed attempt must be taken over by a redelivery or failed by a
	// sweep. (A queued row whose message was never sent is a known gap,
	// docs/SOAK.md "Findings", counted in Unfinished but not asserted.)
	if f.UnfinishedRunning != 0 {
		t.Errorf("%d jobs still running after the drain", f.UnfinishedRunning)
	}
	if f.BackupsCompleted == 0 || f.TargetsCompared == 0 {
		t.Errorf("completed backups %d, compared restore targets %d: the soak checked nothing", f.BackupsCompleted, f.TargetsCompared)
	}
}
