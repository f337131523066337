package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// supervisor runs the custom handler process: starts it, waits until it
// answers GET /, and restarts it when it dies, a bounded number of times
// (docs/research/functions-custom-handler.md §1.4, §1.5).
type supervisor struct {
	exe          string
	args         []string
	dir          string
	env          map[string]string
	port         int
	stdout       io.Writer
	stderr       io.Writer
	log          *slog.Logger
	maxRestarts  int
	readyTimeout time.Duration
	stopTimeout  time.Duration

	ready  chan struct{} // closed once, at the first successful start
	failed chan struct{} // closed when the supervisor gives up
	err    error         // why it gave up; read after failed is closed

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
	stopping bool
}

// readyPollInterval is the host's WorkerReadyCheckPollingIntervalMilliseconds.
const readyPollInterval = 25 * time.Millisecond

func (s *supervisor) url() string { return "http://127.0.0.1:" + strconv.Itoa(s.port) }

// run starts the handler and keeps it running until stop. It returns when
// the supervisor stops or gives up.
func (s *supervisor) run() {
	restarts := 0
	for {
		exited, err := s.launch()
		if err == nil {
			err = s.waitReady(exited)
		}
		if err == nil {
			select {
			case <-s.ready:
			default:
				close(s.ready)
			}
			<-exited
			if s.isStopping() {
				return
			}
			err = errors.New("the handler process exited")
		}
		if s.isStopping() {
			return
		}
		s.kill()
		restarts++
		if restarts > s.maxRestarts {
			s.err = fmt.Errorf("%w; gave up after %d restarts", err, s.maxRestarts)
			s.log.Error("handler failed; stopping", "err", err, "restarts", s.maxRestarts)
			close(s.failed)
			return
		}
		s.log.Warn("handler failed; restarting", "err", err, "restart", restarts, "maxRestarts", s.maxRestarts)
	}
}

func (s *supervisor) launch() (chan struct{}, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return nil, errors.New("stopping")
	}
	cmd := exec.Command(s.exe, s.args...)
	cmd.Dir = s.dir
	keys := make([]string, 0, len(s.env))
	for k := range s.env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+s.env[k])
	}
	cmd.Stdout, cmd.Stderr = s.stdout, s.stderr
	// Own process group, so stop reaches the handler's children too; die with the runner.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start the handler %s: %w", s.exe, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	s.log.Info("handler started", "pid", cmd.Process.Pid, "port", s.port, "exe", s.exe)
	return exited, nil
}

// waitReady polls GET / until any HTTP response: the host counts even a 404
// as ready; only a refused connection keeps it waiting.
func (s *supervisor) waitReady(exited chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.NewTimer(s.readyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(readyPollInterval)
	defer tick.Stop()
	for {
		resp, err := client.Get(s.url() + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("the handler process exited before answering GET /")
		case <-deadline.C:
			return fmt.Errorf("the handler did not answer GET / on port %d within %s", s.port, s.readyTimeout)
		case <-tick.C:
		}
	}
}

// pid is the live handler's process id, 0 when none runs.
func (s *supervisor) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	select {
	case <-s.exited:
		return 0
	default:
		return s.cmd.Process.Pid
	}
}

func (s *supervisor) isStopping() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopping
}

func (s *supervisor) kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
}

// stop sends SIGTERM to the handler's process group so it drains in-flight
// work, and SIGKILL after stopTimeout.
func (s *supervisor) stop(ctx context.Context) {
	s.mu.Lock()
	s.stopping = true
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	t := time.NewTimer(s.stopTimeout)
	defer t.Stop()
	select {
	case <-exited:
		return
	case <-t.C:
	case <-ctx.Done():
	}
	s.log.Warn("handler did not stop after SIGTERM; killing it", "timeout", s.stopTimeout)
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
}
