package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestFirstNpmCiShowsProgress: scripts/lib.sh's ensure_node_modules (the
// first `npm ci` of bash scripts/run.sh) prints a line while npm runs and
// keeps npm's own output in .local/npm-ci.log. The npm on PATH is a
// stand-in that runs until the progress line is on the screen (so nothing
// is timed), then installs.
func TestFirstNpmCiShowsProgress(t *testing.T) {
	lib, err := filepath.Abs("../../scripts/lib.sh")
	if err != nil {
		t.Fatal(err)
	}
	dir, bin := t.TempDir(), t.TempDir()
	screen := filepath.Join(t.TempDir(), "screen")
	fake := `#!/usr/bin/env bash
echo "npm output: added 1 package"
for i in $(seq 1 300); do
	grep -q "still installing" "$SCREEN" && break
	sleep 0.1
done
mkdir -p node_modules && touch node_modules/.package-lock.json
`
	if err := os.WriteFile(filepath.Join(bin, "npm"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "package-lock.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func() string {
		t.Helper()
		f, err := os.Create(screen)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd := exec.Command("bash", "-c", `set -euo pipefail; source "$LIB"; ensure_node_modules`)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "LIB="+lib, "SCREEN="+screen, "PROGRESS_EVERY=1", "PATH="+bin+":"+os.Getenv("PATH"))
		cmd.Stdout, cmd.Stderr = f, f
		if err := cmd.Run(); err != nil {
			b, _ := os.ReadFile(screen)
			t.Fatalf("ensure_node_modules: %v\n%s", err, b)
		}
		b, err := os.ReadFile(screen)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	out := run()
	for _, want := range []string{"Output: .local/npm-ci.log", "  ...  npm ci: still installing (", "  ok   npm ci ("} {
		if !strings.Contains(out, want) {
			t.Errorf("screen lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "npm output") {
		t.Errorf("npm's output reached the screen:\n%s", out)
	}
	if b, err := os.ReadFile(filepath.Join(dir, ".local", "npm-ci.log")); err != nil || !strings.Contains(string(b), "npm output") {
		t.Errorf("npm's output is not in .local/npm-ci.log: %q %v", b, err)
	}
	// Installed: the next run prints nothing.
	if out := run(); out != "" {
		t.Errorf("second run printed:\n%s", out)
	}
}
