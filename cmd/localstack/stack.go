package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	appconfig "github.com/twinit/byok-backup/internal/config"
	"github.com/twinit/byok-backup/internal/devstack/azurite"
	"github.com/twinit/byok-backup/internal/devstack/devauth"
	"github.com/twinit/byok-backup/internal/devstack/kvemu"
	"github.com/twinit/byok-backup/internal/devstack/pack"
	"github.com/twinit/byok-backup/internal/devstack/runner"
)

// Platform key set up in the emulator; the handler reaches it as
// PLATFORM_KEY_ID with PLATFORM_CREDENTIAL=emulator.
const (
	platformVault  = "platform-kv"
	platformKey    = "platform-backup"
	platformTenant = "00000000-0000-0000-0000-00000000f00d"
	byokAppID      = "4ab9f542-0305-4d62-94c9-69786fb5d1ec" // the seed's application id
)

// config is what the command line chooses.
type config struct {
	Src          string // repository root: host.json, functions/, handler/
	DataDir      string // .local: Azurite data, the emulator CA, effective settings
	Dist         string // package output: <Dist>/app, <Dist>/app.zip
	SettingsFile string // optional local.settings.json with extra Values
	Port         int    // runner port (0: free)
	AzuritePorts [3]int // blob, queue, table (0: free)
	KVAddr       string
	AuthAddr     string
	Fresh        bool // wipe Azurite's data first
	DepsOnly     bool // everything but the runner: for `func start` in the app root
	NoDemo       bool // skip the demo step
	Log          *slog.Logger
	HandlerOut   io.Writer // handler stdout/stderr; nil = os.Stdout/os.Stderr
	// Out is the screen: plain lines for a person (nil = os.Stdout).
	Out io.Writer
	// LogFile is where Log and HandlerOut write (openLog), named on screen.
	LogFile string
	// ProgressEvery is how often long steps print a line (default 3s).
	ProgressEvery time.Duration
	// DemoFiles is how many files the demo tenant gets (up to 3 MiB each;
	// default 24): more makes a backup long enough to watch its progress.
	DemoFiles int
}

// stack is the running local environment. Steps fill it in order; close
// undoes whatever was started, in reverse.
type stack struct {
	cfg      config
	az       *azurite.Instance
	kv       *kvemu.Emulator
	issuer   *devauth.Issuer
	app      *pack.Result
	settings map[string]string
	run      *runner.Runner
	closers  []func(context.Context)
	screen   *screen

	demoResult *demoResult
	demoErr    error
}

// step is one stage of bringing the stack up. Later issues add a demo step
// (seed a tenant, enable BYOK, back up, restore) at the end of steps.
type step struct {
	name string
	host bool // part of running the app; skipped with -deps-only
	run  func(*stack, context.Context) error
	// ownProgress: the step prints its own progress lines (the demo), so
	// no "still working" lines.
	ownProgress bool
}

var steps = []step{
	{"start Azurite", false, (*stack).startAzurite, false},
	{"start the Key Vault emulator", false, (*stack).startKeyVault, false},
	{"start the token issuer", false, (*stack).startIssuer, false},
	{"package the app (go build)", false, (*stack).pack, false},
	{"collect settings", false, (*stack).collectSettings, false},
	{"start the runner and the handler", true, (*stack).startRunner, false},
	{"check /api/health", true, (*stack).checkHealth, false},
	{"run the demo", true, (*stack).demo, true},
}

// up runs every step, printing a line for each; on failure it closes what
// was started.
func up(ctx context.Context, cfg config) (*stack, error) {
	s := &stack{cfg: cfg}
	var todo []step
	for _, st := range steps {
		if !(cfg.DepsOnly && st.host) && !(cfg.NoDemo && st.ownProgress) {
			todo = append(todo, st)
		}
	}
	if cfg.LogFile != "" {
		s.out().printf("Starting the local stack. Logs (JSON): %s\n", cfg.LogFile)
	}
	for i, st := range todo {
		start := time.Now()
		if err := s.runStep(st, i+1, len(todo), func() error { return st.run(s, ctx) }); err != nil {
			s.close(context.Background())
			return nil, fmt.Errorf("failed to %s: %w", st.name, err)
		}
		cfg.Log.Info("step done", "step", st.name, "durationMs", time.Since(start).Milliseconds())
	}
	if s.demoResult != nil {
		s.printDemo(s.demoResult, s.demoErr)
	}
	return s, nil
}

func (s *stack) close(ctx context.Context) {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i](ctx)
	}
	s.closers = nil
}

func (s *stack) startAzurite(ctx context.Context) error {
	dir := filepath.Join(s.cfg.DataDir, "azurite")
	if s.cfg.Fresh {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	az, err := azurite.Start(ctx, azurite.Options{Dir: dir, RepoRoot: s.cfg.Src,
		BlobPort: s.cfg.AzuritePorts[0], QueuePort: s.cfg.AzuritePorts[1], TablePort: s.cfg.AzuritePorts[2]})
	if err != nil {
		return err
	}
	s.az = az
	s.closers = append(s.closers, func(context.Context) { az.Stop() })
	return nil
}

func (s *stack) startKeyVault(ctx context.Context) error {
	kv, err := kvemu.Start(kvemu.Options{Addr: s.cfg.KVAddr, Logger: s.cfg.Log.With("component", "kvemu")})
	if err != nil {
		return err
	}
	s.kv = kv
	s.closers = append(s.closers, func(context.Context) { _ = kv.Close() })
	if err := kv.WriteCA(filepath.Join(s.cfg.DataDir, "kvemu-ca.pem")); err != nil {
		return err
	}
	if err := kv.CreateVault(platformVault, platformTenant, kvemu.AccessPolicy); err != nil {
		return err
	}
	if _, err := kv.CreateKey(platformVault, platformKey, "RSA", 3072, nil); err != nil {
		return err
	}
	// Least privilege, as in production: read the key, wrap and unwrap.
	return kv.Grant(platformVault, kvemu.PlatformToken, "get", "wrapKey", "unwrapKey")
}

func (s *stack) startIssuer(ctx context.Context) error {
	iss, err := devauth.Start(devauth.Options{Addr: s.cfg.AuthAddr})
	if err != nil {
		return err
	}
	s.issuer = iss
	s.closers = append(s.closers, func(context.Context) { _ = iss.Close() })
	return nil
}

func (s *stack) pack(ctx context.Context) error {
	res, err := pack.Pack(ctx, pack.Options{Src: s.cfg.Src, Out: s.cfg.Dist})
	if err != nil {
		return err
	}
	s.app = res
	return nil
}

// collectSettings builds the handler's app settings: the optional
// local.settings.json Values, then everything the stack owns on top.
func (s *stack) collectSettings(context.Context) error {
	s.settings = map[string]string{}
	if s.cfg.SettingsFile != "" {
		ls, err := runner.ReadLocalSettings(s.cfg.SettingsFile)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return err
		default:
			for k, v := range ls.Values {
				s.settings[k] = v
			}
		}
	}
	timeout := time.Duration(s.app.App.Host.FunctionTimeout)
	if timeout <= 0 {
		timeout = 30 * time.Minute
	}
	ca, err := filepath.Abs(filepath.Join(s.cfg.DataDir, "kvemu-ca.pem"))
	if err != nil {
		return err
	}
	owned := map[string]string{
		"FUNCTIONS_WORKER_RUNTIME": "custom",
		"AzureWebJobsStorage":      s.az.ConnectionString(),
		"FUNCTION_TIMEOUT":         timeout.String(),
		"PLATFORM_KEY_ID":          s.kv.VaultURL(platformVault) + "keys/" + platformKey,
		"PLATFORM_CREDENTIAL":      "emulator",
		"BYOK_APP_CLIENT_ID":       byokAppID,
		"BYOK_CREDENTIAL":          "emulator",
		"KEYVAULT_URL_TEMPLATE":    s.kv.URLTemplate(),
		"KEYVAULT_CA_FILE":         ca,
		"AUTH_ISSUER":              s.issuer.IssuerURL(),
		"AUTH_AUDIENCE":            s.issuer.Audience(),
		"AUTH_JWKS_URL":            s.issuer.JWKSURL(),
		"AUTH_TENANT_CLAIM":        "tenant",
		"AUTH_ROLES_CLAIM":         "roles",
	}
	for k, v := range owned {
		s.settings[k] = v
	}
	// The triggers name these settings (%NAME%): the host, and so the
	// runner, refuses a function whose setting is unset.
	// JOB_STALE_AFTER 30s: heartbeats (and so a running backup's progress)
	// every 5 s instead of 20 s, and a crashed local handler's job taken
	// over sooner.
	// DEV_SOFT_DELETE_WINDOW 10s: the demo undeletes a backup within its
	// window and purges it after, without waiting a day (the handler takes
	// it only with the emulator credential). RETENTION_MAX_DELETE_FRACTION
	// 1: Azurite's data outlives runs, and the demo's keepLast=1 over the
	// demo tenant's backups of earlier runs would trip the breaker.
	for k, v := range map[string]string{"BACKUP_SCHEDULE": appconfig.DefaultBackupSchedule, "BYOK_MONITOR_SCHEDULE": appconfig.DefaultByokMonitorSchedule,
		"RETENTION_SCHEDULE": appconfig.DefaultRetentionSchedule, "DEV_SOFT_DELETE_WINDOW": "10s", "RETENTION_MAX_DELETE_FRACTION": "1",
		"QUEUE_BACKUP_JOBS": appconfig.DefaultQueueBackupJobs, "QUEUE_RESTORE_JOBS": appconfig.DefaultQueueRestoreJobs, "JOB_STALE_AFTER": "30s",
		"QUEUE_REWRAP_JOBS": appconfig.DefaultQueueRewrapJobs} {
		if s.settings[k] == "" {
			s.settings[k] = v
		}
	}
	// Written beside host.json so `func start` in the app root uses the same
	// settings. It holds only local, non-secret values.
	return writeLocalSettings(filepath.Join(s.app.AppDir, "local.settings.json"), s.settings, s.cfg.Port)
}

func (s *stack) startRunner(ctx context.Context) error {
	r, err := runner.New(runner.Options{Root: s.app.AppDir, Settings: s.settings,
		Addr: "127.0.0.1:" + strconv.Itoa(s.cfg.Port), Logger: s.cfg.Log.With("component", "runner"),
		HandlerStdout: s.cfg.HandlerOut, HandlerStderr: s.cfg.HandlerOut})
	if err != nil {
		return err
	}
	if err := r.Start(ctx); err != nil {
		return err
	}
	s.run = r
	s.closers = append(s.closers, func(ctx context.Context) {
		if err := r.Close(ctx); err != nil {
			s.cfg.Log.Warn("runner did not stop cleanly", "err", err)
		}
	})
	return nil
}

// BaseURL is the runner's address, e.g. http://127.0.0.1:7071.
func (s *stack) BaseURL() string {
	if s.run == nil {
		return "http://127.0.0.1:" + strconv.Itoa(s.cfg.Port)
	}
	return "http://" + s.run.Addr()
}

func (s *stack) checkHealth(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.BaseURL()+"/api/health", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				s.cfg.Log.Info("health", "status", resp.StatusCode, "body", string(b))
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("GET /api/health did not answer 200 within 30s; last answer: %s", last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
