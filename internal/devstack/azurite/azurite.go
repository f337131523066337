// Package azurite starts and stops the pinned Azurite storage emulator
// (installed by `npm ci` from the project's package-lock.json) on free
// loopback ports, for integration tests and the local stack.
package azurite

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// AccountName and AccountKey are Azurite's well-known development account.
// They are public constants documented by Azurite, not secrets.
const (
	AccountName = "devstoreaccount1"
	AccountKey  = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// ErrNotInstalled reports that node_modules/.bin/azurite is missing: run `npm ci`.
var ErrNotInstalled = errors.New("azurite is not installed: run `npm ci` in the repository root")

// Options tune [Start]. The zero value picks free ports and a temporary folder.
type Options struct {
	// Dir holds Azurite's data and debug log; empty means a new temp folder
	// removed by [Instance.Stop].
	Dir string
	// BlobPort, QueuePort, TablePort are fixed ports; 0 picks a free one.
	BlobPort, QueuePort, TablePort int
	// RepoRoot is where node_modules lives; empty means: walk up from the
	// working directory to the folder holding go.mod.
	RepoRoot string
	// StartTimeout bounds the wait for all three ports (default 60s).
	StartTimeout time.Duration

	// pickPort replaces FreePort in tests, to hand Start a taken port.
	pickPort func() (int, error)
}

// Instance is a running Azurite.
type Instance struct {
	BlobPort, QueuePort, TablePort int
	Dir                            string

	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	tempDir bool
}

// ConnectionString is a full connection string with explicit loopback
// endpoints, usable as AzureWebJobsStorage.
func (i *Instance) ConnectionString() string {
	return fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;"+
		"BlobEndpoint=%s;QueueEndpoint=%s;TableEndpoint=%s;",
		AccountName, AccountKey, i.BlobURL(), i.QueueURL(), i.TableURL())
}

// BlobURL is the blob service URL of the dev account.
func (i *Instance) BlobURL() string { return endpoint(i.BlobPort) }

// QueueURL is the queue service URL of the dev account.
func (i *Instance) QueueURL() string { return endpoint(i.QueuePort) }

// TableURL is the table service URL of the dev account.
func (i *Instance) TableURL() string { return endpoint(i.TablePort) }

func endpoint(port int) string {
	return "http://127.0.0.1:" + strconv.Itoa(port) + "/" + AccountName
}

// Start launches Azurite and waits until its three services accept
// connections. The caller must call [Instance.Stop].
//
// A free port is only free until someone binds it: between FreePort closing
// its probe and Azurite listening, a parallel test process can take it, and
// Azurite then exits with EADDRINUSE. When that happens on a port Start
// picked itself, it tries again with new ports (fixed ports are the
// caller's choice and are reported as they are).
func Start(ctx context.Context, opts Options) (*Instance, error) {
	root := opts.RepoRoot
	if root == "" {
		var err error
		if root, err = RepoRoot(); err != nil {
			return nil, err
		}
	}
	bin := filepath.Join(root, "node_modules", ".bin", "azurite")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%w (looked for %s)", ErrNotInstalled, bin)
	}
	dir, tempDir := opts.Dir, false
	if dir == "" {
		d, err := os.MkdirTemp("", "azurite-*")
		if err != nil {
			return nil, fmt.Errorf("failed to create azurite data folder: %w", err)
		}
		dir, tempDir = d, true
	}
	pick := opts.pickPort
	if pick == nil {
		pick = FreePort
	}
	const attempts = 5
	for n := 1; ; n++ {
		inst := &Instance{Dir: dir, done: make(chan struct{}), tempDir: tempDir}
		err := inst.launch(ctx, bin, opts, pick)
		if err == nil {
			return inst, nil
		}
		var taken *portTakenError
		if !errors.As(err, &taken) || n == attempts {
			if tempDir {
				_ = os.RemoveAll(dir)
			}
			return nil, err
		}
	}
}

// portTakenError: Azurite found a port Start had picked already in use.
type portTakenError struct{ log string }

func (e *portTakenError) Error() string {
	return "azurite exited before listening: a port it was given was taken meanwhile: " + e.log
}

// inUse finds the port in node's "listen EADDRINUSE: address already in
// use 127.0.0.1:PORT".
var inUse = regexp.MustCompile(`EADDRINUSE: address already in use [^ ]*:([0-9]+)`)

// launch runs one Azurite process on the configured or newly picked ports.
// On failure it stops the process but leaves the data folder to Start.
func (inst *Instance) launch(ctx context.Context, bin string, opts Options, pick func() (int, error)) error {
	var picked []int
	port := func(fixed int) (int, error) {
		if fixed != 0 {
			return fixed, nil
		}
		p, err := pick()
		picked = append(picked, p)
		return p, err
	}
	var err error
	if inst.BlobPort, err = port(opts.BlobPort); err != nil {
		return err
	}
	if inst.QueuePort, err = port(opts.QueuePort); err != nil {
		return err
	}
	if inst.TablePort, err = port(opts.TablePort); err != nil {
		return err
	}
	logPath := filepath.Join(inst.Dir, "azurite.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("failed to create azurite log: %w", err)
	}
	defer logFile.Close()
	inst.cmd = exec.Command(bin,
		"--silent", "--skipApiVersionCheck", "--disableProductStyleUrl",
		"--location", inst.Dir,
		"--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(inst.BlobPort),
		"--queueHost", "127.0.0.1", "--queuePort", strconv.Itoa(inst.QueuePort),
		"--tableHost", "127.0.0.1", "--tablePort", strconv.Itoa(inst.TablePort),
	)
	inst.cmd.Stdout, inst.cmd.Stderr = logFile, logFile
	// Own process group, so Stop also ends node's children.
	inst.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := inst.cmd.Start(); err != nil {
		return fmt.Errorf("failed to start azurite: %w", err)
	}
	go func() { inst.waitErr = inst.cmd.Wait(); close(inst.done) }()

	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for _, p := range []int{inst.BlobPort, inst.QueuePort, inst.TablePort} {
		for {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p), time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-inst.done:
				out, _ := os.ReadFile(logPath)
				if m := inUse.FindSubmatch(out); m != nil && slices.Contains(picked, atoi(m[1])) {
					return &portTakenError{log: tail(out)}
				}
				return fmt.Errorf("azurite exited before listening (%v): %s", inst.waitErr, tail(out))
			case <-ctx.Done():
				inst.kill()
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				out, _ := os.ReadFile(logPath)
				inst.kill()
				return fmt.Errorf("azurite did not listen on port %d within %s: %s", p, timeout, tail(out))
			}
		}
	}
	return nil
}

func atoi(b []byte) int { n, _ := strconv.Atoi(string(b)); return n }

// Stop ends Azurite and removes its temporary folder.
func (i *Instance) Stop() {
	i.kill()
	i.cleanup()
}

// kill ends Azurite's process group, politely first.
func (i *Instance) kill() {
	if i.cmd != nil && i.cmd.Process != nil {
		_ = syscall.Kill(-i.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-i.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-i.cmd.Process.Pid, syscall.SIGKILL)
			<-i.done
		}
	}
}

func (i *Instance) cleanup() {
	if i.tempDir {
		_ = os.RemoveAll(i.Dir)
	}
}

// Done is closed when the Azurite process exits.
func (i *Instance) Done() <-chan struct{} { return i.done }

// RepoRoot walks up from the working directory to the folder with go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("failed to find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 2000 {
		s = s[len(s)-2000:]
	}
	return s
}

// CPUTime is the user + system CPU time Azurite's processes (its process
// group) have used so far, from /proc (Linux; 0 elsewhere). Benchmarks
// read it around a phase: Azurite's single-threaded node process is
// usually what limits a local run. A nil Instance has used none.
func (i *Instance) CPUTime() time.Duration {
	if i == nil || i.cmd == nil || i.cmd.Process == nil {
		return 0
	}
	pgid := strconv.Itoa(i.cmd.Process.Pid)
	dirs, _ := os.ReadDir("/proc")
	var ticks int64
	for _, d := range dirs {
		if d.Name()[0] < '0' || d.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		// Fields after the command name: state, ppid, pgrp, …, utime (12th), stime (13th).
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 12 && f[2] == pgid {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			ticks += u + st
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ = 100
}
