package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	assetsazure "github.com/twinit/byok-backup/internal/assets/azure"
	"github.com/twinit/byok-backup/internal/config"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/twinit/byok-backup/internal/catalog/aztable"
	"github.com/twinit/byok-backup/internal/devstack/azurite"
	"github.com/twinit/byok-backup/internal/devstack/devauth"
	"github.com/twinit/byok-backup/internal/devstack/kvemu"
	"github.com/twinit/byok-backup/internal/devstack/pack"
	"github.com/twinit/byok-backup/internal/devstack/runner"
	tenantstable "github.com/twinit/byok-backup/internal/tenants/aztable"
)

// The platform key, as the local stack sets it up (cmd/localstack).
const (
	platformVault  = "platform-kv"
	platformKey    = "platform-backup"
	platformTenant = "00000000-0000-0000-0000-00000000f00d"
	byokAppID      = "4ab9f542-0305-4d62-94c9-69786fb5d1ec"
)

// Timings of the soak's handler. Jobs interrupted by a kill are taken over
// once their heartbeat is staleAfter old, and the sweeps fail what no
// redelivery took over after the sweep grace; the queue redelivers a failed
// invocation after visibility. The production defaults (2 min, 1 h, 30 s)
// would make every kill cost minutes. The default grace stays well above a
// redelivery's delay behind a busy queue (up to ~30 s seen), so the sweeps
// fail only jobs no delivery is left for (Options.SweepGrace).
const (
	staleAfter        = 6 * time.Second
	defaultSweepGrace = time.Minute
	visibility        = 3 * time.Second
)

// stack is the soak's private environment.
type stack struct {
	o       Options
	dir     string
	az      *azurite.Instance
	kv      *kvemu.Emulator
	issuer  *devauth.Issuer
	run     *runner.Runner   // the first instance; the kill soak has only this one
	runs    []*runner.Runner // every instance (cmd/soak -instances)
	runLogs []*events        // per instance: what its handler logged
	appDir  string
	env     map[string]string
	logTo   io.Writer
	store   *assetsazure.Store
	cat     *aztable.Store
	blobs   *azblob.Client
	queues  *azqueue.ServiceClient
	tenants *tenantstable.Directory
	events  *events
	closers []func()
}

func (s *stack) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

// start brings up Azurite, the emulator with the platform key, the issuer,
// the packaged handler behind the runner, and the storage clients.
func start(ctx context.Context, o Options) (_ *stack, err error) {
	s := &stack{o: o, events: newEvents()}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	root := o.Src
	if root == "" {
		if root, err = azurite.RepoRoot(); err != nil {
			return nil, err
		}
	}
	if s.dir, err = os.MkdirTemp("", "soak-*"); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { _ = os.RemoveAll(s.dir) })

	if err := os.MkdirAll(filepath.Join(s.dir, "azurite"), 0o755); err != nil {
		return nil, err
	}
	if s.az, err = azurite.Start(ctx, azurite.Options{Dir: filepath.Join(s.dir, "azurite"), RepoRoot: root}); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.az.Stop)

	if s.kv, err = kvemu.Start(kvemu.Options{Logger: slog.New(slog.DiscardHandler)}); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { _ = s.kv.Close() })
	ca := filepath.Join(s.dir, "kvemu-ca.pem")
	if err := s.kv.WriteCA(ca); err != nil {
		return nil, err
	}
	if err := s.kv.CreateVault(platformVault, platformTenant, kvemu.AccessPolicy); err != nil {
		return nil, err
	}
	if _, err := s.kv.CreateKey(platformVault, platformKey, "RSA", 2048, nil); err != nil {
		return nil, err
	}
	if err := s.kv.Grant(platformVault, kvemu.PlatformToken, "get", "wrapKey", "unwrapKey"); err != nil {
		return nil, err
	}

	if s.issuer, err = devauth.Start(devauth.Options{}); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { _ = s.issuer.Close() })

	app, err := pack.Pack(ctx, pack.Options{Src: root, Out: filepath.Join(s.dir, "dist")})
	if err != nil {
		return nil, err
	}
	if err := shortenQueueTimings(filepath.Join(app.AppDir, "host.json")); err != nil {
		return nil, err
	}
	s.appDir = app.AppDir

	s.env = map[string]string{
		"FUNCTIONS_WORKER_RUNTIME": "custom",
		"AzureWebJobsStorage":      s.az.ConnectionString(),
		"FUNCTION_TIMEOUT":         time.Duration(app.App.Host.FunctionTimeout).String(),
		"PLATFORM_KEY_ID":          s.kv.VaultURL(platformVault) + "keys/" + platformKey,
		"PLATFORM_CREDENTIAL":      "emulator",
		"BYOK_APP_CLIENT_ID":       byokAppID,
		"BYOK_CREDENTIAL":          "emulator",
		"KEYVAULT_URL_TEMPLATE":    s.kv.URLTemplate(),
		"KEYVAULT_CA_FILE":         ca,
		"AUTH_ISSUER":              s.issuer.IssuerURL(),
		"AUTH_AUDIENCE":            s.issuer.Audience(),
		"AUTH_JWKS_URL":            s.issuer.JWKSURL(),
		// Scheduled backups every 20 s and the monitor (with the restore
		// sweep) every 10 s, besides the soak's own on-demand runs.
		"BACKUP_SCHEDULE":       "*/20 * * * * *",
		"BYOK_MONITOR_SCHEDULE": "*/10 * * * * *",
		"BACKUP_CHUNK_SIZE":     "1MiB", // several chunks per backup
		"JOB_STALE_AFTER":       staleAfter.String(),
		"JOB_SWEEP_GRACE":       o.SweepGrace.String(),
		// The queue triggers name these settings (%NAME%); the runner, like
		// the host, refuses a function whose setting is unset.
		"QUEUE_BACKUP_JOBS":  config.DefaultQueueBackupJobs,
		"QUEUE_RESTORE_JOBS": config.DefaultQueueRestoreJobs,
		"QUEUE_REWRAP_JOBS":  config.DefaultQueueRewrapJobs,
		"RETENTION_SCHEDULE": config.DefaultRetentionSchedule,
	}
	for k, v := range o.Settings {
		s.env[k] = v
	}
	s.logTo = io.Discard
	if o.HandlerLog != "" {
		f, err := os.Create(o.HandlerLog)
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, func() { _ = f.Close() })
		s.logTo = &lockedWriter{w: f}
	}
	for range max(o.Instances, 1) {
		if err := s.addInstance(ctx); err != nil {
			return nil, err
		}
	}
	s.run = s.runs[0]

	cs := s.az.ConnectionString()
	tables, err := aztables.NewServiceClientFromConnectionString(cs, nil)
	if err != nil {
		return nil, err
	}
	if s.blobs, err = azblob.NewClientFromConnectionString(cs, nil); err != nil {
		return nil, err
	}
	if s.queues, err = azqueue.NewServiceClientFromConnectionString(cs, nil); err != nil {
		return nil, err
	}
	s.store = assetsazure.New(tables.NewClient("Assets"), s.blobs.ServiceClient().NewContainerClient("assets"), nil)
	if err := s.store.Ensure(ctx); err != nil {
		return nil, err
	}
	s.cat = aztable.New(tables.NewClient("Backups"), tables.NewClient("Restores"))
	if err := s.cat.CreateTables(ctx); err != nil {
		return nil, err
	}
	s.tenants = tenantstable.New(tables.NewClient("Tenants"), nil)
	if err := s.tenants.CreateTable(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// addInstance starts one more runner with its own handler process and
// port over the same Azurite, queues and tables: one more host of a
// scaled-out app. Its handler's log lines count in s.events (all
// instances) and in its own entry of s.runLogs.
func (s *stack) addInstance(ctx context.Context) error {
	own := newEvents()
	pr, pw := io.Pipe()
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		scan(pr, s.logTo, s.events, own)
	}()
	s.closers = append(s.closers, func() { _ = pw.Close(); <-scanned })

	run, err := runner.New(runner.Options{Root: s.appDir, Settings: s.env, Addr: "127.0.0.1:0",
		Logger: s.o.Log.With("component", "runner", "instance", len(s.runs)), HandlerStdout: pw, HandlerStderr: pw,
		// Every kill is a restart; the host also keeps restarting a worker
		// that crashes now and then.
		MaxRestarts: 2*s.o.Kills + 10, MinPollInterval: 100 * time.Millisecond, StopTimeout: 10 * time.Second})
	if err != nil {
		return err
	}
	if err := run.Start(ctx); err != nil {
		return err
	}
	s.closers = append(s.closers, func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = run.Close(cctx)
	})
	s.runs = append(s.runs, run)
	s.runLogs = append(s.runLogs, own)
	return nil
}

// lockedWriter keeps the instances' log lines whole in one file.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// shortenQueueTimings rewrites the packaged host.json so a failed
// invocation is redelivered after seconds and empty queues are polled
// every second: the host's own settings, only shorter.
func shortenQueueTimings(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var host map[string]any
	if err := json.Unmarshal(b, &host); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	ext, _ := host["extensions"].(map[string]any)
	q, _ := ext["queues"].(map[string]any)
	if q == nil {
		return fmt.Errorf("%s has no extensions.queues", path)
	}
	q["visibilityTimeout"] = fmt.Sprintf("00:00:%02d", int(visibility/time.Second))
	q["maxPollingInterval"] = "00:00:01"
	b, err = json.MarshalIndent(host, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// events counts what the handler's log lines say happened, per job id:
// the evidence that no backup or restore completed twice.
type events struct {
	mu               sync.Mutex
	backupCompleted  map[string]int
	restoreSucceeded map[string]int
	restoreStarted   map[string]int
	restartedAfterOK map[string]bool // a restore started again after it had succeeded
	msgs             map[string]int  // lines per message
	started          chan struct{}   // a backup or restore attempt started (latest only)
}

func newEvents() *events {
	return &events{backupCompleted: map[string]int{}, restoreSucceeded: map[string]int{},
		restoreStarted: map[string]int{}, restartedAfterOK: map[string]bool{}, msgs: map[string]int{}, started: make(chan struct{}, 1)}
}

// scan reads a handler's JSON log lines until r ends, copying them to
// copyTo and counting them in each of es.
func scan(r io.Reader, copyTo io.Writer, es ...*events) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		_, _ = copyTo.Write(append(line, '\n'))
		var ev struct {
			Msg       string `json:"msg"`
			BackupID  string `json:"backupId"`
			RestoreID string `json:"restoreId"`
		}
		if json.Unmarshal(line, &ev) != nil {
			continue
		}
		for _, e := range es {
			e.add(ev.Msg, ev.BackupID, ev.RestoreID)
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// add counts one log line.
func (e *events) add(msg, backupID, restoreID string) {
	ev := struct{ Msg, BackupID, RestoreID string }{msg, backupID, restoreID}
	e.mu.Lock()
	e.msgs[ev.Msg]++
	if ev.Msg == "backup started" || ev.Msg == "restore started" {
		select {
		case e.started <- struct{}{}:
		default:
		}
	}
	switch ev.Msg {
	case "backup completed":
		e.backupCompleted[ev.BackupID]++
	case "restore started":
		if e.restoreSucceeded[ev.RestoreID] > 0 {
			e.restartedAfterOK[ev.RestoreID] = true
		}
		e.restoreStarted[ev.RestoreID]++
	case "restore succeeded":
		e.restoreSucceeded[ev.RestoreID]++
	}
	e.mu.Unlock()
}

// duplicates counts ids the log shows completing more than once.
func (e *events) duplicates() (backups, restores int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, n := range e.backupCompleted {
		if n > 1 {
			backups++
		}
	}
	for id, n := range e.restoreSucceeded {
		if n > 1 || e.restartedAfterOK[id] {
			restores++
		}
	}
	return backups, restores
}

// count is the number of lines with message msg so far.
func (e *events) count(msg string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.msgs[msg]
}

// handlerUp waits until the handler process runs and answers through the runner.
func (s *stack) handlerUp(ctx context.Context) error {
	for {
		if s.run.HandlerPID() != 0 {
			code, _, err := s.call(ctx, "GET", "/api/health", "", "", nil)
			if err == nil && code == 200 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.run.Failed():
			return errors.New("the runner gave up restarting the handler")
		case <-time.After(100 * time.Millisecond):
		}
	}
}
