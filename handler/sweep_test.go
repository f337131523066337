package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/twinit/byok-backup/internal/app"
	"github.com/twinit/byok-backup/internal/devstack/seed"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	assetsazure "github.com/twinit/byok-backup/internal/assets/azure"
	"github.com/twinit/byok-backup/internal/config"
	"github.com/twinit/byok-backup/internal/devstack/azurite"
	"github.com/twinit/byok-backup/internal/devstack/devauth"
	"github.com/twinit/byok-backup/internal/devstack/kvemu"
	"github.com/twinit/byok-backup/internal/tenants"
	tenantstable "github.com/twinit/byok-backup/internal/tenants/aztable"
	"github.com/twinit/byok-backup/internal/testing/fatal"
	"github.com/twinit/byok-backup/internal/testing/logtest"
)

// fakeClock is the services' clock, moved by the test.
type fakeClock struct{ off atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *fakeClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// sweepEnv is the handler wired in-process over its own Azurite and Key
// Vault emulator, with a fake clock.
type sweepEnv struct {
	t      *testing.T
	env    map[string]string
	clock  *fakeClock
	logs   *logtest.Buffer
	tables *aztables.ServiceClient
	blobs  *azblob.Client
	queues *azqueue.ServiceClient
	issuer *devauth.Issuer
}

func newSweepEnv(t *testing.T) *sweepEnv {
	t.Helper()
	az := azurite.TestStart(t)
	iss := devauth.TestStart(t)
	kv := kvemu.TestStart(t)
	check(t, kv.CreateVault("platform-kv", "00000000-0000-0000-0000-000000000001", kvemu.AccessPolicy))
	_, err := kv.CreateKey("platform-kv", "platform-backup", "RSA", 2048, nil)
	check(t, err)
	check(t, kv.Grant("platform-kv", kvemu.PlatformToken, "get", "wrapKey", "unwrapKey"))
	caFile := filepath.Join(t.TempDir(), "kv-ca.pem")
	check(t, kv.WriteCA(caFile))
	e := &sweepEnv{t: t, clock: &fakeClock{}, logs: &logtest.Buffer{}, issuer: iss, env: map[string]string{
		"AzureWebJobsStorage":          az.ConnectionString(),
		"PLATFORM_KEY_ID":              strings.ReplaceAll(kv.URLTemplate(), "{vault}", "platform-kv") + "keys/platform-backup",
		"PLATFORM_CREDENTIAL":          "emulator",
		"BYOK_APP_CLIENT_ID":           "4ab9f542-0305-4d62-94c9-69786fb5d1ec",
		"BYOK_CREDENTIAL":              "emulator",
		"KEYVAULT_URL_TEMPLATE":        kv.URLTemplate(),
		"KEYVAULT_CA_FILE":             caFile,
		"AUTH_ISSUER":                  iss.IssuerURL(),
		"AUTH_AUDIENCE":                iss.Audience(),
		"AUTH_JWKS_URL":                iss.JWKSURL(),
		"BACKUP_CHUNK_SIZE":            "1MiB",
		"FUNCTIONS_CUSTOMHANDLER_PORT": "7072", // never listened on: the test serves in-process
	}}
	cs := az.ConnectionString()
	e.tables, err = aztables.NewServiceClientFromConnectionString(cs, nil)
	check(t, err)
	e.blobs, err = azblob.NewClientFromConnectionString(cs, nil)
	check(t, err)
	e.queues, err = azqueue.NewServiceClientFromConnectionString(cs, nil)
	check(t, err)
	return e
}

// handler wires the handler as main does, with the settings overridden
// by set, and returns it.
func (e *sweepEnv) handler(set map[string]string) (http.Handler, config.Config) {
	e.t.Helper()
	env := map[string]string{}
	for k, v := range e.env {
		env[k] = v
	}
	for k, v := range set {
		env[k] = v
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	check(e.t, err)
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := app.New(e.t.Context(), cfg, app.Deps{Logger: logger, Now: e.clock.Now})
	check(e.t, err)
	h, err := a.Handler(e.t.Context())
	check(e.t, err)
	return h, cfg
}

// timerFunctions are the functions whose trigger is a timer, from
// functions/*/function.json: every timer the host would fire.
func timerFunctions(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../functions/*/function.json")
	check(t, err)
	var names []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		check(t, err)
		var fn struct{ Bindings []struct{ Type string } }
		check(t, json.Unmarshal(b, &fn))
		for _, bd := range fn.Bindings {
			if bd.Type == "timerTrigger" {
				names = append(names, filepath.Base(filepath.Dir(f)))
			}
		}
	}
	if len(names) < 2 {
		t.Fatalf("timer functions = %v: the handler serves at least BackupScheduler and ByokMonitor", names)
	}
	return names
}

// post invokes a function as the host does and wants 200.
func post(t *testing.T, h http.Handler, name, body string) {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/"+name, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("%s = %d %s", name, rec.Code, rec.Body)
	}
}

func (e *sweepEnv) fireTimer(h http.Handler, name string) {
	e.t.Helper()
	post(e.t, h, name, fmt.Sprintf(`{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":false}},"Metadata":{"sys":{"MethodName":%q,"UtcNow":%q,"RandGuid":"4e773554-f6b7-4ea2-b07d-4c5fd5aba741"}}}`,
		name, e.clock.Now().UTC().Format(time.RFC3339Nano)))
}

// runJobs takes every backup job off the queue and delivers it to the
// worker, the message text encoded as the host encodes it.
func (e *sweepEnv) runJobs(h http.Handler, cfg config.Config) int {
	e.t.Helper()
	qc := e.queues.NewQueueClient(cfg.Names.QueueBackupJobs)
	ran := 0
	for {
		n := int32(32)
		resp, err := qc.DequeueMessages(e.t.Context(), &azqueue.DequeueMessagesOptions{NumberOfMessages: &n})
		check(e.t, err)
		if len(resp.Messages) == 0 {
			return ran
		}
		for _, m := range resp.Messages {
			text, err := base64.StdEncoding.DecodeString(*m.MessageText)
			check(e.t, err)
			once, _ := json.Marshal(string(text))
			twice, _ := json.Marshal(string(once))
			id, _ := json.Marshal(strconv.Quote(*m.MessageID))
			post(e.t, h, "BackupWorker", fmt.Sprintf(`{"Data":{"job":%s},"Metadata":{"DequeueCount":"1","Id":%s,"sys":{"MethodName":"BackupWorker","UtcNow":%q}}}`,
				twice, id, e.clock.Now().UTC().Format(time.RFC3339Nano)))
			_, err = qc.DeleteMessage(e.t.Context(), *m.MessageID, *m.PopReceipt, nil)
			check(e.t, err)
			ran++
		}
	}
}

func (e *sweepEnv) blobNames(container string) []string {
	e.t.Helper()
	var names []string
	pager := e.blobs.NewListBlobsFlatPager(container, nil)
	for pager.More() {
		page, err := pager.NextPage(e.t.Context())
		check(e.t, err)
		for _, b := range page.Segment.BlobItems {
			names = append(names, *b.Name)
		}
	}
	return names
}

// fireAllTimers fires every timer function rounds times, the clock moved
// past every age threshold (24 h failed retention, 1 h sweep grace,
// retention and soft-delete windows) before each round.
func (e *sweepEnv) fireAllTimers(h http.Handler, rounds int) {
	e.t.Helper()
	timers := timerFunctions(e.t)
	for range rounds {
		e.clock.Advance(400 * 24 * time.Hour)
		for _, name := range timers {
			e.fireTimer(h, name)
		}
	}
}

// The Backups table renamed (TABLE_BACKUPS changed: the handler creates the
// new table empty) or emptied: every timer the handler serves, fired again
// and again with the clock years ahead, deletes no blob of the backups
// container, and the sweep reports the row-less backups with counts.
func TestNoTimerDeletesBackupsWithoutRows(t *testing.T) {
	e := newSweepEnv(t)
	ctx := t.Context()
	h, cfg := e.handler(nil)

	// Real completed backups: two tenants, three scheduled days each.
	dir := tenantstable.New(e.tables.NewClient(cfg.Names.TableTenants), nil)
	store := assetsazure.New(e.tables.NewClient(cfg.Names.TableAssets), e.blobs.ServiceClient().NewContainerClient(cfg.Names.ContainerAssets), nil)
	check(t, store.Ensure(ctx))
	for _, tenant := range []string{"acme", "globex"} {
		check(t, dir.Put(ctx, tenants.Tenant{ID: tenant, BackupEnabled: true}))
		_, err := seed.Tenant(ctx, store, tenant, seed.Options{Records: 20, Files: 3, FileSize: 64 << 10, Seed: 3})
		check(t, err)
	}
	for range 3 {
		e.fireTimer(h, "BackupScheduler")
		if n := e.runJobs(h, cfg); n != 2 {
			t.Fatalf("ran %d jobs, want 2", n)
		}
		e.clock.Advance(24 * time.Hour)
	}
	backups := e.blobNames(cfg.Names.ContainerBackups)
	manifests := 0
	for _, n := range backups {
		if strings.HasSuffix(n, "/manifest") {
			manifests++
		}
	}
	if manifests != 6 {
		t.Fatalf("%d manifests in %d blobs, want 6 completed backups", manifests, len(backups))
	}
	orphanReport := func() map[string]any {
		t.Helper()
		recs := e.logs.Records("backup blobs without a catalog row were found and kept: they are never deleted automatically; check TABLE_BACKUPS and the table's contents")
		if len(recs) == 0 {
			t.Fatal("no orphan report logged")
		}
		return recs[len(recs)-1]
	}
	checkKept := func(when string) {
		t.Helper()
		got := e.blobNames(cfg.Names.ContainerBackups)
		for _, n := range backups {
			if !slices.Contains(got, n) {
				t.Errorf("%s: backup blob %s deleted", when, n)
			}
		}
		rep := orphanReport()
		if rep["orphanBackups"] != float64(6) || rep["orphanBlobs"] != float64(len(backups)) || rep["tenants"] != float64(2) {
			t.Errorf("%s: orphan report = %v, want 6 backups, %d blobs, 2 tenants", when, rep, len(backups))
		}
		runs := e.logs.Records("backup scheduler run")
		if last := runs[len(runs)-1]; last["orphanBackups"] != float64(6) || last["sweptBlobs"] != float64(0) {
			t.Errorf("%s: scheduler run = %v", when, last)
		}
	}

	// A mistyped or changed TABLE_BACKUPS.
	renamed, _ := e.handler(map[string]string{"TABLE_BACKUPS": "BackupsRenamed"})
	e.fireAllTimers(renamed, 3)
	checkKept("renamed table")

	// The real table emptied, by hand or restored from before the backups.
	rows := e.tables.NewClient(cfg.Names.TableBackups)
	pager := rows.NewListEntitiesPager(nil)
	deleted := 0
	for pager.More() {
		page, err := pager.NextPage(ctx)
		check(t, err)
		for _, raw := range page.Entities {
			var ent aztables.Entity
			check(t, json.Unmarshal(raw, &ent))
			_, err := rows.DeleteEntity(ctx, ent.PartitionKey, ent.RowKey, nil)
			check(t, err)
			deleted++
		}
	}
	if deleted < 6 {
		t.Fatalf("deleted %d rows, want the 6 backups' at least", deleted)
	}
	e.fireAllTimers(h, 3)
	checkKept("emptied table")
}

// check keeps the call sites short; the helper itself is shared.
var check = fatal.IfErr
