package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"testing"
)

// TestMain lets the test binary stand in for the command's child
// processes: Run re-executes os.Executable with childEnv set.
func TestMain(m *testing.M) {
	if phase := os.Getenv(childEnv); phase != "" {
		os.Exit(childMain(phase))
	}
	os.Exit(m.Run())
}

// TestShortRunsEveryPhase is CI's smoke test of the command at its -short
// size: every phase (rclone's included; CI installs rclone) runs in its
// child and the table and ratios are printed, with Azurite freed and
// restarted between phases as the command does by default. No speed is
// asserted.
func TestShortRunsEveryPhase(t *testing.T) {
	var out bytes.Buffer
	size := Short
	size.Reclaim = true
	if err := Run(context.Background(), &out, size, 1, Diag{}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := out.String()
	// The five phases, spelled out: not the command's own list.
	for _, ph := range []string{"LB", "backup", "LR", "restore", "B2"} {
		line := regexp.MustCompile(`(?m)^run 1 ` + regexp.QuoteMeta(ph) + ` +[0-9.]+ MiB/s +[0-9.]+ s +peak RSS +[0-9.]+ MiB +Azurite CPU +[0-9.]+ s$`)
		if !line.MatchString(got) {
			t.Errorf("no measured line for phase %s", ph)
		}
		row := regexp.MustCompile(`(?m)^ *` + regexp.QuoteMeta(ph) + `( +[0-9.]+){4}$`)
		if !row.MatchString(got) {
			t.Errorf("no table row for phase %s", ph)
		}
		if regexp.MustCompile(`(?m)^run 1 ` + regexp.QuoteMeta(ph) + ` .*peak RSS +0\.0 MiB `).MatchString(got) {
			t.Errorf("phase %s: no peak RSS measured for its child", ph)
		}
	}
	for _, r := range []string{"backup/LB", "backup/B2", "restore/LR"} {
		if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(r) + `\t[0-9.]+ / [0-9.]+ / [0-9.]+$`).MatchString(got) {
			t.Errorf("no ratio %s", r)
		}
	}
	if t.Failed() {
		t.Log(got)
	}
}
