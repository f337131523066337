package backup_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/twinit/byok-backup/internal/retention"
	retentiontable "github.com/twinit/byok-backup/internal/retention/aztable"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/twinit/byok-backup/internal/assets"
	assetsazure "github.com/twinit/byok-backup/internal/assets/azure"
	assetsmem "github.com/twinit/byok-backup/internal/assets/mem"
	"github.com/twinit/byok-backup/internal/audit"
	audittable "github.com/twinit/byok-backup/internal/audit/aztable"
	"github.com/twinit/byok-backup/internal/backup"
	"github.com/twinit/byok-backup/internal/blobstore"
	blobazure "github.com/twinit/byok-backup/internal/blobstore/azure"
	blobmem "github.com/twinit/byok-backup/internal/blobstore/mem"
	"github.com/twinit/byok-backup/internal/byok"
	byoktable "github.com/twinit/byok-backup/internal/byok/aztable"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/catalog/aztable"
	catmem "github.com/twinit/byok-backup/internal/catalog/mem"
	"github.com/twinit/byok-backup/internal/credential"
	"github.com/twinit/byok-backup/internal/devstack/azurite"
	"github.com/twinit/byok-backup/internal/devstack/devauth"
	"github.com/twinit/byok-backup/internal/devstack/kvemu"
	"github.com/twinit/byok-backup/internal/devstack/seed"
	"github.com/twinit/byok-backup/internal/edge/api"
	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/edge/server"
	"github.com/twinit/byok-backup/internal/envelope"
	"github.com/twinit/byok-backup/internal/jobqueue"
	jobqueueaz "github.com/twinit/byok-backup/internal/jobqueue/azqueue"
	"github.com/twinit/byok-backup/internal/keywrap"
	"github.com/twinit/byok-backup/internal/keywrap/keyvault"
	"github.com/twinit/byok-backup/internal/lease"
	leasetable "github.com/twinit/byok-backup/internal/lease/aztable"
	leasemem "github.com/twinit/byok-backup/internal/lease/mem"
	tenantstable "github.com/twinit/byok-backup/internal/tenants/aztable"
	"github.com/twinit/byok-backup/internal/testing/fatal"
	"github.com/twinit/byok-backup/internal/testing/logtest"
)

// One Azurite for the package: its CPU is the bottleneck. Every test gets
// its own tables, containers and queue.
var (
	storage *azurite.Instance
	seq     atomic.Int64
)

func TestMain(m *testing.M) { azurite.RunTests(m, &storage) }

const (
	appID      = "4ab9f542-0305-4d62-94c9-69786fb5d1ec"
	entraA     = "18a5c4b2-84a8-4acb-8db8-fc7073207415"
	platVault  = "platform-kv"
	custVault  = "cust-kv"
	testChunk  = 64 << 10
	testTenant = "acme"
)

// clock is time.Now moved by an offset, so tests can age heartbeats.
type clock struct{ off atomic.Int64 }

func (c *clock) Now() time.Time            { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) Advance(d time.Duration)   { c.off.Add(int64(d)) }
func (c *clock) Since(t time.Time) float64 { return c.Now().Sub(t).Seconds() }

// env is one test's world: Azurite resources of its own, the Key Vault
// emulator with a platform vault and a customer vault, the real adapters,
// the service and the real server in front of it.
type env struct {
	t       *testing.T
	emu     *kvemu.Emulator
	kv      *keyvault.Wrapper // undecorated, for verification
	wrapper *audit.Wrapper
	audit   *audit.Log
	byok    *byok.Service
	assets  assets.Store // in memory, or Azure for the end-to-end test
	cat     catalog.Store
	blobs   blobstore.Store
	backups *container.Client // the Azure backups container; nil in memory
	leases  *lease.Manager
	reqs    *lease.Manager // POST …/backups request leases
	queue   *renamedQueue
	qsvc    *azqueue.ServiceClient
	dir     *tenantstable.Directory
	tenantT *aztables.Client
	// policies is the RetentionPolicies table (API.md §6).
	policies *retentiontable.Store
	clock    *clock
	logs     *logtest.Buffer
	issuer   *devauth.Issuer
	verify   *auth.Verifier

	platform keywrap.Ref
	svc      *backup.Service
	handler  http.Handler
}

// newEnv builds the env with the tenant's assets, the leases, the catalog
// and the backups container in memory (assets/mem, lease/mem, catalog/mem,
// blobstore/mem: each held to its Azure adapter by a conformance suite);
// the queue, the settings and audit tables and the keys stay real. [newAzureEnv] is the end-to-end variant.
func newEnv(t *testing.T, mods ...func(*backup.Options)) *env {
	t.Helper()
	return newEnvOn(t, false, mods...)
}

// newAzureEnv builds the env with every dependency real: the assets in
// Azurite's table and container and the leases in its table, for the
// service's one Azurite + emulator end-to-end test.
func newAzureEnv(t *testing.T, mods ...func(*backup.Options)) *env {
	t.Helper()
	return newEnvOn(t, true, mods...)
}

func newEnvOn(t *testing.T, azure bool, mods ...func(*backup.Options)) *env {
	t.Helper()
	ctx := t.Context()
	n := seq.Add(1)
	cs := storage.ConnectionString()
	tsvc, err := aztables.NewServiceClientFromConnectionString(cs, nil)
	must(t, err)
	bsvc, err := azblob.NewClientFromConnectionString(cs, nil)
	must(t, err)
	qsvc, err := azqueue.NewServiceClientFromConnectionString(cs, nil)
	must(t, err)

	e := &env{t: t, clock: &clock{}, logs: &logtest.Buffer{}, qsvc: qsvc}
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("BACKUP_TEST_LOGS") != "" {
			t.Log(e.logs.String())
		}
	})
	e.emu = kvemu.TestStart(t)
	must(t, e.emu.CreateVault(platVault, "00000000-0000-4000-8000-000000000001", kvemu.AccessPolicy))
	_, err = e.emu.CreateKey(platVault, "platform", "RSA", 2048, nil)
	must(t, err)
	must(t, e.emu.Grant(platVault, kvemu.PlatformToken, "get", "wrapKey", "unwrapKey"))
	must(t, e.emu.CreateVault(custVault, entraA, kvemu.AccessPolicy))
	_, err = e.emu.CreateKey(custVault, "k", "RSA", 2048, nil)
	must(t, err)
	// Tagged for the tenants the tests configure BYOK for (API.md §5).
	must(t, e.emu.SetTags(custVault, "k", "", map[string]string{keywrap.DefaultOwnershipTag: "acme acme2"}))
	must(t, e.emu.Grant(custVault, kvemu.CustomerToken(appID, entraA), "get", "wrapKey", "unwrapKey"))
	e.platform = keywrap.Ref{Source: keywrap.Platform, VaultURL: e.emu.VaultURL(platVault), KeyName: "platform"}

	creds, err := credential.New(credential.Options{Mode: credential.Emulator, AppClientID: appID, PlatformMode: credential.Emulator})
	must(t, err)
	e.kv, err = keyvault.New(keyvault.Options{Credentials: creds, ApplicationID: appID, CAPEM: e.emu.CAPEM(),
		MaxRetries: 1, RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 50 * time.Millisecond,
		TryTimeout: 3 * time.Second, DialTimeout: 500 * time.Millisecond, OwnershipTag: keywrap.DefaultOwnershipTag})
	must(t, err)
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	table := func(name string) *aztables.Client {
		c := tsvc.NewClient(fmt.Sprintf("%s%d", name, n))
		if _, err := c.CreateTable(ctx, nil); err != nil {
			t.Fatal(err)
		}
		return c
	}
	e.audit = audit.New(audittable.New(table("KeyAudit")), nil)
	e.wrapper = audit.NewWrapper(e.kv, e.audit, logger)
	e.byok, err = byok.New(byok.Options{Store: byoktable.New(table("ByokSettings")),
		Validator: audit.NewValidator(e.kv, e.audit, logger), VaultURLTemplate: e.emu.URLTemplate(),
		AppClientID: appID, Logger: logger, OwnershipTag: keywrap.DefaultOwnershipTag, ValidateBurst: 1000})
	must(t, err)
	var leaseTable lease.Table = leasemem.New()
	if azure {
		e.assets = assetsazure.New(tsvc.NewClient(fmt.Sprintf("Assets%d", n)),
			bsvc.ServiceClient().NewContainerClient(fmt.Sprintf("assets-%d", n)), nil)
		leaseTable = leasetable.New(table("Leases"))
	} else {
		e.assets = assetsmem.New()
	}
	must(t, e.assets.Ensure(ctx))
	if azure {
		cat := aztable.New(tsvc.NewClient(fmt.Sprintf("Backups%d", n)), tsvc.NewClient(fmt.Sprintf("Restores%d", n)))
		must(t, cat.CreateTables(ctx))
		e.backups = bsvc.ServiceClient().NewContainerClient(fmt.Sprintf("backups-%d", n))
		blobs := blobazure.New(e.backups)
		must(t, blobs.CreateContainer(ctx))
		e.cat, e.blobs = cat, blobs
	} else {
		e.cat, e.blobs = catmem.New(), blobmem.New()
	}
	e.leases = lease.NewWith(leaseTable, &lease.Options{Now: e.clock.Now})
	e.reqs = lease.NewWith(leaseTable, &lease.Options{Scope: "backup-request", Now: e.clock.Now})
	e.queue = &renamedQueue{q: jobqueueaz.New(qsvc), name: fmt.Sprintf("backup-jobs-%d", n)}
	e.tenantT = table("Tenants")
	e.dir = tenantstable.New(e.tenantT, nil)
	e.policies = retentiontable.New(table("RetentionPolicies"))

	e.issuer = devauth.TestStart(t)
	e.verify, err = auth.NewVerifier(ctx, auth.VerifierOptions{JWKSURL: e.issuer.JWKSURL(),
		Issuer: e.issuer.IssuerURL(), Audience: e.issuer.Audience()})
	must(t, err)
	e.svc, e.handler = e.build(logger, mods...)
	return e
}

// options are the service's options over this env's real dependencies.
func (e *env) options(logger *slog.Logger) backup.Options {
	return backup.Options{
		Source: e.assets, Catalog: e.cat, Blobs: e.blobs, Wrapper: e.wrapper, Keys: e.byok,
		PlatformKey: e.platform, Leases: e.leases, RequestLeases: e.reqs, Queue: e.queue, Tenants: e.dir, Logger: logger,
		ChunkSize: testChunk, Parallelism: 3, HeartbeatEvery: 200 * time.Millisecond, StaleAfter: time.Minute,
		LeaseTTL: 30 * time.Second, SweepGrace: time.Hour, Now: e.clock.Now,
		Policies: e.policies, RetentionDefault: retention.Policy{KeepLast: 7, KeepDaily: 30, KeepWeekly: 12, KeepMonthly: 12},
		Retry: &blobstore.RetryOptions{BaseDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond},
	}
}

// svcLogger logs JSON into the env's log buffer.
func (e *env) svcLogger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// build makes a service ("a process") and the server in front of it.
func (e *env) build(logger *slog.Logger, mods ...func(*backup.Options)) (*backup.Service, http.Handler) {
	o := e.options(logger)
	for _, m := range mods {
		m(&o)
	}
	svc, err := backup.New(o)
	must(e.t, err)
	srv := server.New(server.Config{Logger: logger, Auth: e.verify, FunctionTimeout: 5 * time.Minute})
	api.Backups(srv.HandleAPI, svc)
	api.Retention(srv.HandleAPI, svc)
	srv.HandleTimer("BackupRetention", api.BackupRetention(svc))
	srv.HandleQueue("BackupWorker", api.BackupWorker(svc, logger))
	srv.HandleTimer("BackupScheduler", api.BackupScheduler(svc))
	return svc, srv.Handler()
}

// enableBYOK configures the customer key for tenant (the validation's own
// wrap is then forgotten from the emulator's log).
func (e *env) enableBYOK(tenant string, fallback bool) {
	e.t.Helper()
	_, err := e.byok.Configure(e.t.Context(), tenant, byok.Settings{KeyVaultName: custVault, KeyName: "k",
		TenantID: entraA, FallbackToPlatformKey: fallback}, "")
	must(e.t, err)
	e.emu.ResetRequests()
}

// seed writes a small synthetic tenant: records of every EDM type and
// files of mixed sizes spanning several chunks.
func (e *env) seed(tenant string, records, files int) assets.Counts {
	e.t.Helper()
	c, err := seed.Tenant(e.t.Context(), e.assets, tenant, seed.Options{Records: records, Files: files, FileSize: 150 << 10, Seed: 7})
	must(e.t, err)
	return c
}

// request creates a queued row and its job the way POST /backups does.
func (e *env) request(tenant string) jobqueue.BackupJob {
	e.t.Helper()
	b, err := e.svc.Request(e.t.Context(), tenant, catalog.ReasonManual)
	must(e.t, err)
	return jobqueue.BackupJob{Tenant: tenant, BackupID: b.BackupID, Reason: b.Reason, RequestedAt: b.RequestedAt}
}

// deliver posts job to /BackupWorker as the Functions host does (message
// text JSON-encoded twice, metadata values as JSON strings).
func (e *env) deliver(ctx context.Context, h http.Handler, job jobqueue.BackupJob, dequeueCount int) *httptest.ResponseRecorder {
	e.t.Helper()
	text, err := json.Marshal(job)
	must(e.t, err)
	return e.deliverText(ctx, h, text, dequeueCount)
}

func (e *env) deliverText(ctx context.Context, h http.Handler, text []byte, dequeueCount int) *httptest.ResponseRecorder {
	once, _ := json.Marshal(string(text))
	twice, _ := json.Marshal(string(once))
	id, _ := json.Marshal(`"` + fmt.Sprint(seq.Add(1)) + `"`)
	body := fmt.Sprintf(`{"Data":{"job":%s},"Metadata":{"DequeueCount":%q,"Id":%s,"sys":{"MethodName":"BackupWorker","UtcNow":%q}}}`,
		twice, strconv.Itoa(dequeueCount), id, time.Now().UTC().Format(time.RFC3339Nano))
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/BackupWorker", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// fireTimer posts a BackupScheduler timer invocation.
func (e *env) fireTimer(at time.Time) *httptest.ResponseRecorder {
	body := fmt.Sprintf(`{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":false}},"Metadata":{"sys":{"MethodName":"BackupScheduler","UtcNow":%q,"RandGuid":"4e773554-f6b7-4ea2-b07d-4c5fd5aba741"}}}`,
		at.UTC().Format(time.RFC3339Nano))
	req := httptest.NewRequestWithContext(e.t.Context(), http.MethodPost, "/BackupScheduler", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	return rec
}

// received takes every message off the test's queue (as the host would,
// base64-decoded), decoded as backup jobs.
func (e *env) received() []jobqueue.BackupJob {
	e.t.Helper()
	qc := e.qsvc.NewQueueClient(e.queue.name)
	var out []jobqueue.BackupJob
	for {
		n := int32(32)
		resp, err := qc.DequeueMessages(e.t.Context(), &azqueue.DequeueMessagesOptions{NumberOfMessages: &n})
		must(e.t, err)
		if len(resp.Messages) == 0 {
			return out
		}
		for _, m := range resp.Messages {
			text, err := base64.StdEncoding.DecodeString(*m.MessageText)
			must(e.t, err)
			job, err := jobqueue.DecodeBackupJob(text)
			must(e.t, err)
			out = append(out, job)
			_, err = qc.DeleteMessage(e.t.Context(), *m.MessageID, *m.PopReceipt, nil)
			must(e.t, err)
		}
	}
}

func (e *env) row(tenant, id string) *catalog.Backup {
	e.t.Helper()
	b, err := e.cat.GetBackup(e.t.Context(), tenant, id)
	must(e.t, err)
	return b
}

// blobNames lists every blob under prefix in the backups container.
func (e *env) blobNames(prefix string) []string {
	e.t.Helper()
	var names []string
	must(e.t, e.blobs.List(e.t.Context(), prefix, func(i blobstore.Info) error {
		names = append(names, i.Name)
		return nil
	}))
	return names
}

// renamedQueue sends every message to the test's own queue, so tests
// sharing one Azurite never see each other's jobs.
type renamedQueue struct {
	q    *jobqueueaz.Queue
	name string
	fail atomic.Bool
	// beforeEnqueue, when set, runs first (a test cancels the request there).
	beforeEnqueue func()
}

func (r *renamedQueue) Enqueue(ctx context.Context, queue string, msg any) error {
	if r.beforeEnqueue != nil {
		r.beforeEnqueue()
	}
	if queue != jobqueue.BackupQueue {
		return fmt.Errorf("unexpected queue %q", queue)
	}
	if r.fail.Load() {
		return errors.New("queue unavailable (test)")
	}
	return r.q.Enqueue(ctx, r.name, msg)
}

func (r *renamedQueue) EnqueueAfter(ctx context.Context, queue string, msg any, delay time.Duration) error {
	if queue != jobqueue.BackupQueue {
		return fmt.Errorf("unexpected queue %q", queue)
	}
	if r.fail.Load() {
		return errors.New("queue unavailable (test)")
	}
	return r.q.EnqueueAfter(ctx, r.name, msg, delay)
}

// restored is a verified backup's content.
type restored struct {
	manifest *envelope.Manifest
	records  []assets.Record
	files    map[string][]byte
	meta     map[string]assets.File
}

// verifyBackup checks a completed row against its blobs the way a restore
// would: unwrap the recorded key, authenticate every chunk, decode both
// streams, compare counts and sizes with the row.
func (e *env) verifyBackup(b *catalog.Backup) restored {
	e.t.Helper()
	ctx := e.t.Context()
	if b.Status != catalog.StatusCompleted {
		e.t.Fatalf("backup %s is %s, want completed", b.BackupID, b.Status)
	}
	mb, err := e.blobs.GetBlob(ctx, b.ManifestBlob)
	must(e.t, err)
	if b.ManifestDigest != catalog.DigestManifest(mb) {
		e.t.Fatalf("row pins manifest %q, the blob is %s", b.ManifestDigest, catalog.DigestManifest(mb))
	}
	m, err := envelope.ParseManifest(mb)
	must(e.t, err)
	if m.Key.KeyID != b.KeyID || m.Key.Source != b.KeySource {
		e.t.Fatalf("manifest key %s/%s, row %s/%s", m.Key.Source, m.Key.KeyID, b.KeySource, b.KeyID)
	}
	vaultURL, name, _, err := keywrap.ParseKeyID(m.Key.KeyID)
	must(e.t, err)
	ref := keywrap.Ref{Source: m.Key.Source, VaultURL: vaultURL, KeyName: name}
	if m.Key.Source == keywrap.Customer {
		ref.TenantID, ref.Owner = entraA, m.Tenant
	}
	raw, err := e.kv.Unwrap(ctx, ref, m.Key.Wrapped())
	must(e.t, err)
	dk, err := envelope.DataKeyFromBytes(raw)
	clear(raw)
	must(e.t, err)
	r, err := envelope.Open(m, dk, b.Tenant, b.BackupID)
	dk.Destroy()
	must(e.t, err)
	src := chunkSource{s: e.blobs, dir: strings.TrimSuffix(b.ManifestBlob, "manifest")}
	if err := r.Verify(ctx, src, 4); err != nil {
		e.t.Fatalf("verify: %v", err)
	}
	var chunks, stored int64
	for _, s := range m.Streams {
		chunks += int64(s.Chunks)
		stored += int64(s.CiphertextSize)
		if b.Streams[backup.StreamName(s.ID)] != int64(s.Chunks) {
			e.t.Errorf("row streams %v, manifest stream %d has %d chunks", b.Streams, s.ID, s.Chunks)
		}
	}
	if b.Chunks != chunks || b.StoredBytes != stored+int64(len(mb)) {
		e.t.Errorf("row chunks %d storedBytes %d, manifest %d and %d", b.Chunks, b.StoredBytes, chunks, stored+int64(len(mb)))
	}
	out := restored{manifest: m, files: map[string][]byte{}, meta: map[string]assets.File{}}
	rs, err := r.Stream(ctx, backup.StreamRecords, src)
	must(e.t, err)
	dec := assets.NewDecoder(rs)
	for {
		k, err := dec.Next()
		if err == io.EOF {
			break
		}
		must(e.t, err)
		if k != assets.KindRecord {
			e.t.Fatalf("records stream holds kind %d", k)
		}
		out.records = append(out.records, dec.Record())
	}
	fs, err := r.Stream(ctx, backup.StreamFiles, src)
	must(e.t, err)
	dec = assets.NewDecoder(fs)
	for {
		k, err := dec.Next()
		if err == io.EOF {
			break
		}
		must(e.t, err)
		if k != assets.KindFile {
			e.t.Fatalf("files stream holds kind %d", k)
		}
		content, err := io.ReadAll(dec.Content())
		must(e.t, err)
		out.files[dec.File().Path] = content
		out.meta[dec.File().Path] = dec.File()
	}
	var bytesTotal int64
	for _, c := range out.files {
		bytesTotal += int64(len(c))
	}
	if b.Records != int64(len(out.records)) || b.Files != int64(len(out.files)) || b.Bytes != bytesTotal {
		e.t.Errorf("row counts %d/%d/%d, backup holds %d/%d/%d", b.Records, b.Files, b.Bytes, len(out.records), len(out.files), bytesTotal)
	}
	return out
}

// checkMatchesSource compares a verified backup with the tenant's assets.
func (e *env) checkMatchesSource(tenant string, got restored) {
	e.t.Helper()
	ctx := e.t.Context()
	i := 0
	for rec, err := range e.assets.Records(ctx, tenant) {
		must(e.t, err)
		if i >= len(got.records) || !rec.Equal(got.records[i]) {
			e.t.Fatalf("record %d differs from the source", i)
		}
		i++
	}
	if i != len(got.records) {
		e.t.Fatalf("backup has %d records, source %d", len(got.records), i)
	}
	n := 0
	for f, err := range e.assets.Files(ctx, tenant) {
		must(e.t, err)
		rc, err := e.assets.OpenFile(ctx, tenant, f)
		must(e.t, err)
		want, err := io.ReadAll(rc)
		rc.Close()
		must(e.t, err)
		if !bytes.Equal(got.files[f.Path], want) {
			e.t.Fatalf("file %d content differs from the source", n)
		}
		m := got.meta[f.Path]
		if m.ContentType != f.ContentType || m.CacheControl != f.CacheControl || len(m.Metadata) != len(f.Metadata) {
			e.t.Fatalf("file %d properties differ: %+v vs %+v", n, m, f)
		}
		n++
	}
	if n != len(got.files) {
		e.t.Fatalf("backup has %d files, source %d", len(got.files), n)
	}
}

// chunkSource reads sealed chunks from a committed attempt's directory.
type chunkSource struct {
	s   blobstore.Store
	dir string
}

func (c chunkSource) Chunk(ctx context.Context, stream uint32, index uint64) ([]byte, error) {
	return c.s.GetBlob(ctx, fmt.Sprintf("%schunks/%s/%0*d", c.dir, backup.StreamName(stream), blobstore.ChunkIndexWidth, index))
}

// wrapRows are the tenant's KeyAudit rows for wraps.
func (e *env) wrapRows(tenant string) []audit.Entry {
	e.t.Helper()
	rows, err := e.audit.List(e.t.Context(), tenant, 0)
	must(e.t, err)
	var out []audit.Entry
	for _, r := range rows {
		if r.Operation == audit.Wrap {
			out = append(out, r)
		}
	}
	return out
}

// must keeps the call sites short; the helper itself is shared.
var must = fatal.IfErr
