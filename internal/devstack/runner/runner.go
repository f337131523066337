// Package runner is a local stand-in for the Azure Functions host, used
// when Core Tools (`func`) is not installed. It reads an app root (host.json
// and the top-level function folders), starts the custom handler, fires
// timers on their NCRONTAB schedules or on demand, pumps Storage queues with
// the host's payload encoding, retries and poison queue, and forwards HTTP.
//
// It follows docs/research/functions-custom-handler.md §8 ("Checklist for a host
// emulator"). It is a development tool: production runs on the real host.
// Like Core Tools, it does not check function keys (authLevel).
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/robfig/cron/v3"

	"github.com/twinit/byok-backup/internal/devstack/runner/approot"
)

// Options configure [New]. Only Root is required.
type Options struct {
	// Root is the app root: host.json beside one folder per function.
	Root string
	// Settings are app settings (local.settings.json Values). They override
	// the process environment, and both are visible to the handler and to
	// %NAME% references in function.json.
	Settings map[string]string
	// Addr is where the runner listens; default 127.0.0.1:7071. Use
	// 127.0.0.1:0 for a free port and read [Runner.Addr].
	Addr string
	// Logger receives the runner's logs; nil means JSON to stdout.
	Logger *slog.Logger
	// HandlerStdout and HandlerStderr receive the handler's output; nil
	// means the runner's own stdout and stderr.
	HandlerStdout, HandlerStderr io.Writer
	// MaxRestarts bounds handler restarts after a crash or a failed start
	// (default 3, the host's ErrorEventsThreshold).
	MaxRestarts int
	// MinPollInterval is the queue poll interval while messages arrive
	// (default 100ms); polling backs off to host.json maxPollingInterval
	// (default 2s here, 1 min on the host) while queues are empty.
	MinPollInterval time.Duration
	// StopTimeout bounds how long the handler may drain after SIGTERM
	// (default 30s).
	StopTimeout time.Duration
}

// Runner is a running local host. Create it with [New], then [Runner.Start].
type Runner struct {
	app       *approot.App
	opts      Options
	log       *slog.Logger
	settings  map[string]string
	queueOpts approot.QueueOptions
	minPoll   time.Duration
	maxPoll   time.Duration

	hostVersion string
	client      *http.Client
	sup         *supervisor
	timers      []*timer
	queues      []*queueTrigger
	routes      []*route

	baseCtx    context.Context // invocations; cancelled only after draining
	baseCancel context.CancelFunc
	pumpCancel context.CancelFunc
	pumps      sync.WaitGroup
	cron       *cron.Cron
	srv        *http.Server
	ln         net.Listener

	mu           sync.Mutex
	closed       bool
	inflight     sync.WaitGroup
	queueClients map[string]*azqueue.ServiceClient
}

// New reads the app root and checks every function's trigger (schedules
// parse, %NAME% references resolve, routes are valid). It starts nothing.
func New(opts Options) (*Runner, error) {
	app, err := approot.Load(opts.Root)
	if err != nil {
		return nil, err
	}
	r := &Runner{app: app, opts: opts, log: opts.Logger, hostVersion: hostVersion,
		queueClients: map[string]*azqueue.ServiceClient{}}
	if r.log == nil {
		r.log = slog.New(slog.NewJSONHandler(os.Stdout, nil))
	}
	if r.opts.Addr == "" {
		r.opts.Addr = "127.0.0.1:7071"
	}
	r.settings = environ()
	for k, v := range opts.Settings {
		r.settings[k] = v
	}
	r.queueOpts = app.Host.Extensions.Queues.WithDefaults()
	r.minPoll = opts.MinPollInterval
	if r.minPoll <= 0 {
		r.minPoll = 100 * time.Millisecond
	}
	r.maxPoll = time.Duration(r.queueOpts.MaxPollingInterval)
	if r.maxPoll <= 0 {
		r.maxPoll = 2 * time.Second
	}
	r.maxPoll = max(r.maxPoll, r.minPoll)

	forwarding := app.Host.CustomHandler.EnableForwardingHTTPRequest || app.Host.CustomHandler.EnableProxyingHTTPRequest
	for _, fn := range app.Functions {
		tr, _ := fn.Trigger()
		switch {
		case strings.EqualFold(tr.Type, approot.TypeTimer):
			t, err := newTimer(fn, tr, r.settings)
			if err != nil {
				return nil, err
			}
			r.timers = append(r.timers, t)
		case strings.EqualFold(tr.Type, approot.TypeQueue):
			if _, err := resolve(tr.QueueName, r.settings); err != nil {
				return nil, fmt.Errorf("function %s: %w", fn.Name, err)
			}
		case strings.EqualFold(tr.Type, approot.TypeHTTP):
			tmpl := tr.Route
			if tmpl == "" {
				tmpl = fn.Name
			}
			rt, err := parseRoute(fn.Name, tmpl, tr.Methods, forwarding && fn.IsHTTPOnly())
			if err != nil {
				return nil, err
			}
			r.routes = append(r.routes, rt)
		default:
			return nil, fmt.Errorf("function %s: the runner does not support trigger type %q", fn.Name, tr.Type)
		}
	}
	sortRoutes(r.routes)

	timeout := time.Duration(app.Host.FunctionTimeout)
	if timeout > 0 {
		timeout += time.Minute // the host's client timeout (§1.6)
	}
	r.client = &http.Client{
		Timeout:       timeout,
		Transport:     &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return r, nil
}

// App is the discovered app root.
func (r *Runner) App() *approot.App { return r.app }

// Start launches the handler, waits until it is ready, then starts the HTTP
// listener, the timers and the queue pumps. On error everything started is
// stopped again.
func (r *Runner) Start(ctx context.Context) (err error) {
	r.baseCtx, r.baseCancel = context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		if err != nil {
			r.Close(context.Background())
		}
	}()
	if err := r.startHandler(ctx); err != nil {
		return err
	}
	pumpCtx, cancel := context.WithCancel(r.baseCtx)
	r.pumpCancel = cancel
	for _, fn := range r.app.Functions {
		if tr, _ := fn.Trigger(); strings.EqualFold(tr.Type, approot.TypeQueue) {
			q, err := r.newQueueTrigger(ctx, fn, tr)
			if err != nil {
				return err
			}
			r.queues = append(r.queues, q)
		}
	}
	ln, err := net.Listen("tcp", r.opts.Addr)
	if err != nil {
		return fmt.Errorf("failed to listen on %s (is another runner or func host using it?): %w", r.opts.Addr, err)
	}
	r.ln = ln
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		if err := r.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.log.Error("runner HTTP server stopped", "err", err)
		}
	}()
	for _, q := range r.queues {
		r.pumps.Add(1)
		go func() { defer r.pumps.Done(); r.pump(pumpCtx, q) }()
	}
	r.startTimers()
	r.log.Info("runner ready", "addr", "http://"+ln.Addr().String(), "handler", r.sup.url(),
		"functions", len(r.app.Functions), "timers", len(r.timers), "queues", len(r.queues), "routes", len(r.routes))
	return nil
}

func (r *Runner) startHandler(ctx context.Context) error {
	port := r.app.Host.CustomHandler.Port
	if port == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("failed to find a free port for the handler: %w", err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	env := map[string]string{}
	for k, v := range r.settings {
		env[k] = v
	}
	workerID := newID()
	env["FUNCTIONS_CUSTOMHANDLER_PORT"] = strconv.Itoa(port)
	env["FUNCTIONS_HTTPWORKER_PORT"] = strconv.Itoa(port)
	env["FUNCTIONS_CUSTOMHANDLER_WORKER_ID"] = workerID
	env["FUNCTIONS_HTTPWORKER_ID"] = workerID
	env["FUNCTIONS_APP_ROOT_PATH"] = r.app.Root
	var args []string
	for _, a := range r.app.Host.CustomHandler.Description.Arguments {
		// Unset %VAR% becomes empty and empty arguments are dropped (§1.1).
		v := settingRef.ReplaceAllStringFunc(a, func(m string) string { return r.settings[m[1:len(m)-1]] })
		if v != "" {
			args = append(args, v)
		}
	}
	ready := time.Duration(r.app.Host.CustomHandler.InitializationTimeout)
	if ready <= 0 {
		ready = 30 * time.Second
	}
	r.sup = &supervisor{
		exe: r.app.Executable(), args: args, dir: r.app.WorkingDir(), env: env, port: port,
		stdout: orDefault(r.opts.HandlerStdout, os.Stdout), stderr: orDefault(r.opts.HandlerStderr, os.Stderr),
		log: r.log.With("component", "handler"), maxRestarts: r.opts.MaxRestarts, readyTimeout: ready,
		stopTimeout: r.opts.StopTimeout, ready: make(chan struct{}), failed: make(chan struct{}),
	}
	if r.opts.MaxRestarts == 0 {
		r.sup.maxRestarts = 3
	}
	if r.sup.stopTimeout <= 0 {
		r.sup.stopTimeout = 30 * time.Second
	}
	go r.sup.run()
	select {
	case <-r.sup.ready:
		return nil
	case <-r.sup.failed:
		return fmt.Errorf("the handler did not start: %w", r.sup.err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func orDefault(w, def io.Writer) io.Writer {
	if w == nil {
		return def
	}
	return w
}

// Addr is the runner's listen address (host:port), valid after Start.
func (r *Runner) Addr() string { return r.ln.Addr().String() }

// HandlerPID is the process id of the running handler, or 0 while it is
// down (between a crash and its restart). The kill -9 soak (cmd/soak)
// kills it to crash the handler like a lost host instance would.
func (r *Runner) HandlerPID() int { return r.sup.pid() }

// Failed is closed when the handler crashed more than MaxRestarts times;
// the runner is then useless and should be closed.
func (r *Runner) Failed() <-chan struct{} { return r.sup.failed }

// track registers an invocation the runner must wait for when closing; it
// reports false once Close has begun.
func (r *Runner) track() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.inflight.Add(1)
	return true
}

// Close stops in this order: the HTTP listener (in-flight requests finish),
// timers, queue polling, then waits for running invocations and stops the
// handler with SIGTERM. ctx bounds the whole drain.
func (r *Runner) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	var errs []error
	if r.srv != nil {
		if err := r.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("failed to drain HTTP requests: %w", err))
		}
	}
	if r.cron != nil {
		select {
		case <-r.cron.Stop().Done():
		case <-ctx.Done():
		}
	}
	if r.pumpCancel != nil {
		r.pumpCancel()
	}
	drained := make(chan struct{})
	go func() { r.pumps.Wait(); r.inflight.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-ctx.Done():
		errs = append(errs, errors.New("gave up waiting for running invocations"))
	}
	if r.baseCancel != nil {
		r.baseCancel()
	}
	if r.sup != nil {
		r.sup.stop(ctx)
	}
	r.log.Info("runner stopped")
	return errors.Join(errs...)
}
