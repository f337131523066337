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

// TestInstancesKeepTheInvariants runs one scheduler slot's backups of 30
// tenants and 6 restores on one runner, then the same workload on three
// runners sharing one Azurite, the scheduler fired once, then fired from
// all three for the same slot: every tenant is backed up exactly once, no
// two jobs of one tenant overlap, no message is lost, and the work is
// spread.
func TestInstancesKeepTheInvariants(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	f, err := RunInstances(ctx, InstancesOptions{Tenants: 30, Restores: 6, Instances: 3, Records: 10, Files: 2, FileSize: 8 << 10,
		Phase: 3 * time.Minute, Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelError}))})
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
	if len(f.Phases) != 3 {
		t.Fatalf("%d phases, want 3", len(f.Phases))
	}
	for _, p := range f.Phases {
		if p.BackupsCompleted != 30 || p.RestoresSucceeded != 3 || p.DryRunsSucceed != 3 {
			t.Errorf("%d instance(s): %d slot backups, %d replace restores, %d dry runs completed; want 30, 3, 3",
				p.Instances, p.BackupsCompleted, p.RestoresSucceeded, p.DryRunsSucceed)
		}
	}
	for i, want := range [][2]int{{1, 1}, {3, 1}, {3, 3}} {
		if p := f.Phases[i]; p.Instances != want[0] || p.SchedulerRuns != want[1] {
			t.Errorf("phase %d: %d instances, %d scheduler runs; want %d and %d", i+1, p.Instances, p.SchedulerRuns, want[0], want[1])
		}
	}
	// The queue spreads the work: more than one handler must have run jobs,
	// or the test did not test instances side by side.
	for _, p := range f.Phases[1:] {
		working := 0
		for _, n := range p.JobsPerInstance {
			if n > 0 {
				working++
			}
		}
		if working < 2 {
			t.Errorf("jobs per instance %v: the work was not shared", p.JobsPerInstance)
		}
	}
	if f.Contended == 0 {
		t.Error("no tenant had a backup and a restore requested together: the overlap check checked nothing")
	}
}
