package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// What a person sees is plain lines on the screen (issue 14 point 5); the
// JSON logs of the stack, the runner, the handler and the Key Vault
// emulator go to one file under the data folder, named on screen. Azurite
// writes its own log beside its data.

// logFileName is the JSON log's name in the data folder; each run
// starts it afresh.
const logFileName = "localstack.log"

// defaultProgressEvery is how often a long step or a running demo backup
// prints a line, so a person sees it is alive.
const defaultProgressEvery = 3 * time.Second

func (s *stack) progressEvery() time.Duration {
	if s.cfg.ProgressEvery > 0 {
		return s.cfg.ProgressEvery
	}
	return defaultProgressEvery
}

// openLog points cfg's logger and the handler's output at
// <DataDir>/localstack.log. The returned func closes the file.
func openLog(cfg *config) (func(), error) {
	path, err := filepath.Abs(filepath.Join(cfg.DataDir, logFileName))
	if err != nil {
		return nil, err
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("failed to create the log file: %w", err)
	}
	// The runner writes the handler's output from two goroutines
	// (stdout, stderr); lines must not interleave.
	w := &lockedWriter{w: f}
	cfg.LogFile = path
	cfg.Log = slog.New(slog.NewJSONHandler(w, nil))
	cfg.HandlerOut = w
	return func() { _ = f.Close() }, nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// screen prints the plain lines; safe for concurrent use.
type screen struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *screen) printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, format, args...)
}

// out is where the stack prints for a person (cfg.Out, else stdout).
func (s *stack) out() *screen {
	if s.screen == nil {
		w := s.cfg.Out
		if w == nil {
			w = os.Stdout
		}
		s.screen = &screen{w: w}
	}
	return s.screen
}

// runStep runs one step, printing "ok" or "FAIL" with its duration, and,
// while a long step runs, a line every progressEvery.
func (s *stack) runStep(st step, n, of int, run func() error) error {
	out := s.out()
	start := time.Now()
	stop := func() {}
	if !st.ownProgress {
		stop = s.tick(fmt.Sprintf("  ...  [%d/%d] %s: still working", n, of, st.name))
	}
	err := run()
	stop()
	if err != nil {
		out.printf("  FAIL [%d/%d] %s after %s\n", n, of, st.name, since(start))
		return err
	}
	out.printf("  ok   [%d/%d] %s (%s)\n", n, of, st.name, since(start))
	return nil
}

// tick prints "<line> (<time so far>)" every progressEvery until stop is
// called; stop returns once nothing more will be printed.
func (s *stack) tick(line string) (stop func()) {
	start := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(s.progressEvery())
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				s.out().printf("%s (%s)\n", line, since(start))
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

func since(t time.Time) string {
	d := time.Since(t)
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// size prints a byte count for a person: 1.5 MiB.
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// signInLink opens the Settings page for the demo tenant signed in as its
// administrator and operator, with a development token (valid 1 h): the
// one link the screen prints (pageLink builds it; the browser test opens
// the page through pageLink too).
func (s *stack) signInLink() string {
	link, err := s.pageLink(s.BaseURL(), demoTenant, "byok.admin", "backup.operator")
	if err != nil {
		s.cfg.Log.Warn("could not mint the sign-in token", "err", err)
		return ""
	}
	return link
}
