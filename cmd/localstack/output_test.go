package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/testing/logtest"
)

// TestLongStepShowsProgress: a step still running after the interval
// prints "still working" lines until it ends, then its "ok" line; a step
// that prints its own progress (the demo) gets none; a failed step says
// FAIL. The step waits for the line itself, so nothing is timed.
func TestLongStepShowsProgress(t *testing.T) {
	screen := &logtest.Buffer{}
	s := &stack{cfg: config{Out: screen, ProgressEvery: time.Millisecond}}
	err := s.runStep(step{name: "package the app"}, 4, 8, func() error {
		// The bound only turns "never" into a failure.
		for range 10000 {
			if strings.Contains(screen.String(), "still working") {
				return nil
			}
			time.Sleep(time.Millisecond)
		}
		return errors.New("no progress line while the step ran")
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(screen.String(), "\n"), "\n")
	if !strings.HasPrefix(lines[0], "  ...  [4/8] package the app: still working (") ||
		!strings.HasPrefix(lines[len(lines)-1], "  ok   [4/8] package the app (") {
		t.Fatalf("screen:\n%s", screen)
	}

	screen = &logtest.Buffer{}
	s = &stack{cfg: config{Out: screen, ProgressEvery: time.Millisecond}}
	boom := errors.New("boom")
	err = s.runStep(step{name: "run the demo", ownProgress: true}, 8, 8, func() error {
		time.Sleep(20 * time.Millisecond) // many intervals: none may print
		return boom
	})
	if !errors.Is(err, boom) || strings.Contains(screen.String(), "still working") ||
		!strings.HasPrefix(screen.String(), "  FAIL [8/8] run the demo after ") {
		t.Fatalf("err %v, screen:\n%s", err, screen)
	}
}

// TestBackupProgressLine: the demo's line for a running backup, from the
// progress GET …/backups/{id} reports.
func TestBackupProgressLine(t *testing.T) {
	var b backupView
	b.Progress.Records, b.Progress.Files, b.Progress.Bytes = 300, 12, 3<<20
	if got, want := backupProgress(b), "3.0 MiB of files read, 300 records, 12 files so far"; got != want {
		t.Errorf("total unknown: %q, want %q", got, want)
	}
	total := int64(12 << 20)
	b.Progress.TotalBytes = &total
	if got, want := backupProgress(b), "3.0 MiB of 12.0 MiB (25%) of files read, 300 records, 12 files so far"; got != want {
		t.Errorf("total known: %q, want %q", got, want)
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 5 << 30: "5.0 GiB"} {
		if got := size(n); got != want {
			t.Errorf("size(%d) = %q, want %q", n, got, want)
		}
	}
}
