package restore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/twinit/byok-backup/internal/assets"
	assetsazure "github.com/twinit/byok-backup/internal/assets/azure"
	assetsmem "github.com/twinit/byok-backup/internal/assets/mem"
	"github.com/twinit/byok-backup/internal/blobstore"
	blobazure "github.com/twinit/byok-backup/internal/blobstore/azure"
	blobmem "github.com/twinit/byok-backup/internal/blobstore/mem"
	"github.com/twinit/byok-backup/internal/byok"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/catalog/aztable"
	catmem "github.com/twinit/byok-backup/internal/catalog/mem"
	"github.com/twinit/byok-backup/internal/credential"
	"github.com/twinit/byok-backup/internal/devstack/azurite"
	"github.com/twinit/byok-backup/internal/devstack/devauth"
	"github.com/twinit/byok-backup/internal/devstack/kvemu"
	"github.com/twinit/byok-backup/internal/edge/api"
	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/edge/server"
	"github.com/twinit/byok-backup/internal/envelope"
	"github.com/twinit/byok-backup/internal/jobqueue"
	"github.com/twinit/byok-backup/internal/keywrap"
	"github.com/twinit/byok-backup/internal/keywrap/keyvault"
	"github.com/twinit/byok-backup/internal/lease"
	leasetable "github.com/twinit/byok-backup/internal/lease/aztable"
	leasemem "github.com/twinit/byok-backup/internal/lease/mem"
	"github.com/twinit/byok-backup/internal/restore"
	"github.com/twinit/byok-backup/internal/testing/fatal"
	"github.com/twinit/byok-backup/internal/testing/logtest"
)

// storage is the package's one Azurite; fuzz workers (copies of this test
// binary) start none (azurite.Run).
var storage *azurite.Instance

func azuriteFor(t testing.TB) *azurite.Instance {
	t.Helper()
	if storage == nil {
		t.Fatal("azurite is not running (a fuzz worker starts none)")
	}
	return storage
}

func TestMain(m *testing.M) { azurite.RunTests(m, &storage) }

const (
	appID       = "4ab9f542-0305-4d62-94c9-69786fb5d1ec"
	entraTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	vault       = "contoso-kv"
	keyName     = "twinit-backup"
	platVault   = "platform-kv"
	platKey     = "platform-backup"
	chunkSize   = 1024 // small, so every backup has several chunks to tamper with
)

var seq atomic.Int64

// keySettings is the source tenant's BYOK settings as the restore reads them.
type keySettings struct {
	mu      sync.Mutex
	enabled bool
	ref     keywrap.Ref
}

func (k *keySettings) CustomerKey(ctx context.Context, tenant string) (keywrap.Ref, byok.Settings, bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	ref := k.ref
	ref.Owner = tenant // as byok.Service names the owner
	return ref, byok.Settings{KeyVaultName: vault, KeyName: keyName, TenantID: entraTenant, FallbackToPlatformKey: true}, k.enabled, nil
}

// RecordKeyUse is what the backup pipeline reports; the tests don't need it.
func (k *keySettings) RecordKeyUse(context.Context, string, error) error { return nil }

// recordQueue keeps the enqueued jobs; the tests deliver them to the
// worker as the host would.
type recordQueue struct {
	mu      sync.Mutex
	jobs    []jobqueue.RestoreJob
	backups []jobqueue.BackupJob
	// beforeEnqueue, when set, runs first (a test cancels the request there).
	beforeEnqueue func()
}

// Enqueue honours ctx like the real queue client: a cancelled context
// enqueues nothing.
func (q *recordQueue) Enqueue(ctx context.Context, queue string, msg any) error {
	if q.beforeEnqueue != nil {
		q.beforeEnqueue()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	switch queue {
	case jobqueue.RestoreQueue:
		q.jobs = append(q.jobs, msg.(jobqueue.RestoreJob))
	case jobqueue.BackupQueue:
		q.backups = append(q.backups, msg.(jobqueue.BackupJob))
	default:
		return fmt.Errorf("unexpected queue %s", queue)
	}
	return nil
}

// clock is time.Now moved forward by the test.
type clock struct{ off atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) advance(d time.Duration) { c.off.Add(int64(d)) }

// env is one restore service wired as production is: Azurite (catalog,
// backups container, assets, leases), the Key Vault emulator through the
// real keyvault wrapper, devauth tokens, the real server routes.
type env struct {
	t       *testing.T
	emu     *kvemu.Emulator
	wrapper keywrap.Wrapper
	cat     catalog.Store
	blobs   blobstore.Store
	store   assets.Store // in memory, or Azure for the end-to-end test
	target  *faultTarget
	keys    *keySettings
	queue   *recordQueue
	clock   *clock
	svc     *restore.Service
	handler http.Handler
	iss     *devauth.Issuer
	kid     string // customer key version in use
	platRef keywrap.Ref
	custRef keywrap.Ref
	logs    *logtest.Buffer
	log     *slog.Logger
	leases  *lease.Manager
	// spoolLimit is restore.Options.SpoolLimit (0 = the default);
	// backupChunkSize is makeBackup's chunk size (0 = chunkSize).
	spoolLimit      int64
	backupChunkSize int
}

// newEnv builds the env with the target tenant's assets, the leases, the
// catalog and the backups container in memory (assets/mem, lease/mem,
// catalog/mem, blobstore/mem: each held to its Azure adapter by a
// conformance suite); the keys stay real (the emulator). [newAzureEnv] is the end-to-end variant.
func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvOn(t, false)
}

// newAzureEnv builds the env with every dependency real: all storage in
// Azurite, for the service's one Azurite + emulator end-to-end test.
func newAzureEnv(t *testing.T) *env {
	t.Helper()
	return newEnvOn(t, true)
}

func newEnvOn(t *testing.T, azure bool) *env {
	t.Helper()
	ctx := t.Context()
	n := seq.Add(1)
	e := &env{t: t, keys: &keySettings{enabled: true}, queue: &recordQueue{}, clock: &clock{}, logs: &logtest.Buffer{}}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	// Key Vault.
	e.emu = kvemu.TestStart(t)
	must(t, e.emu.CreateVault(vault, entraTenant, kvemu.AccessPolicy))
	must(t, e.emu.Grant(vault, kvemu.CustomerToken(appID, entraTenant), "get", "wrapKey", "unwrapKey"))
	kid, err := e.emu.CreateKey(vault, keyName, "RSA", 2048, nil)
	must(t, err)
	e.kid = kid
	// The customer key is tagged for the tenants the tests back up
	// (API.md §5); the wrapper checks it like production does.
	must(t, e.emu.SetTags(vault, keyName, "", map[string]string{keywrap.DefaultOwnershipTag: "acme acme-sandbox acme-copy"}))
	must(t, e.emu.CreateVault(platVault, entraTenant, kvemu.AccessPolicy))
	must(t, e.emu.Grant(platVault, kvemu.PlatformToken, "get", "wrapKey", "unwrapKey"))
	_, err = e.emu.CreateKey(platVault, platKey, "RSA", 2048, nil)
	must(t, err)
	creds, err := credential.New(credential.Options{Mode: credential.Emulator, AppClientID: appID, PlatformMode: credential.Emulator})
	must(t, err)
	w, err := keyvault.New(keyvault.Options{Credentials: creds, ApplicationID: appID, CAPEM: e.emu.CAPEM(),
		MaxRetries: 1, RetryDelay: 10 * time.Millisecond, MaxRetryDelay: time.Second, TryTimeout: 5 * time.Second, Logger: log,
		OwnershipTag: keywrap.DefaultOwnershipTag})
	must(t, err)
	e.wrapper = w
	pu, err := keywrap.VaultURL(e.emu.URLTemplate(), platVault)
	must(t, err)
	e.platRef = keywrap.Ref{Source: keywrap.Platform, VaultURL: pu, KeyName: platKey}
	cu, err := keywrap.VaultURL(e.emu.URLTemplate(), vault)
	must(t, err)
	e.custRef = keywrap.Ref{Source: keywrap.Customer, VaultURL: cu, KeyName: keyName, TenantID: entraTenant}
	e.keys.ref = e.custRef

	// Storage.
	az := azuriteFor(t)
	tables, err := aztables.NewServiceClientFromConnectionString(az.ConnectionString(), nil)
	must(t, err)
	blobSvc, err := azblob.NewClientFromConnectionString(az.ConnectionString(), nil)
	must(t, err)
	if azure {
		cat := aztable.New(tables.NewClient(fmt.Sprintf("Backups%d", n)), tables.NewClient(fmt.Sprintf("Restores%d", n)))
		must(t, cat.CreateTables(ctx))
		bs := blobazure.New(blobSvc.ServiceClient().NewContainerClient(fmt.Sprintf("backups%d", n)))
		must(t, bs.CreateContainer(ctx))
		e.cat, e.blobs = cat, bs
	} else {
		e.cat, e.blobs = catmem.New(), blobmem.New()
	}
	if azure {
		e.store = assetsazure.New(tables.NewClient(fmt.Sprintf("Assets%d", n)), blobSvc.ServiceClient().NewContainerClient(fmt.Sprintf("assets%d", n)), &assetsazure.Options{Logger: log})
		e.leases = lease.NewWith(leasetable.New(tables.NewClient(fmt.Sprintf("Leases%d", n))), nil)
	} else {
		e.store = assetsmem.New()
		e.leases = lease.NewWith(leasemem.New(), nil)
	}
	must(t, e.store.Ensure(ctx))
	e.target = &faultTarget{Target: restore.StoreTarget(e.store)}
	must(t, e.leases.CreateTable(ctx))
	e.log = log

	e.iss = devauth.TestStart(t)
	e.wire(e.keys)
	return e
}

// wire (re)builds the restore service over keys and the real server routes
// (devauth tokens) in front of it; install adds other services' routes.
func (e *env) wire(keys restore.KeySettings, install ...func(handleAPI api.HandleAPI)) {
	t := e.t
	svc, err := restore.New(restore.Options{
		Catalog: e.cat, Blobs: e.blobs, Target: e.target, Wrapper: e.wrapper, Keys: keys,
		PlatformKey: e.platRef, URLTemplate: e.emu.URLTemplate(), ApplicationID: appID,
		Leases: e.leases, Queue: e.queue, Logger: e.log, Parallelism: 3,
		SpoolDir: t.TempDir(), SpoolLimit: e.spoolLimit, ProgressEvery: 50 * time.Millisecond, SweepGrace: time.Hour,
		Retry: &blobstore.RetryOptions{MaxAttempts: 2, BaseDelay: 10 * time.Millisecond},
		Now:   e.clock.now,
	})
	must(t, err)
	e.svc = svc
	v, err := auth.NewVerifier(t.Context(), auth.VerifierOptions{JWKSURL: e.iss.JWKSURL(), Issuer: e.iss.IssuerURL(), Audience: e.iss.Audience(), Logger: e.log})
	must(t, err)
	srv := server.New(server.Config{Logger: e.log, Auth: v})
	api.Restores(srv.HandleAPI, svc)
	srv.HandleQueue("RestoreWorker", api.RestoreWorker(svc, e.log))
	for _, in := range install {
		in(srv.HandleAPI)
	}
	e.handler = srv.Handler()
}

// must keeps the call sites short; the helper itself is shared.
var must = fatal.IfErr

func (e *env) token(tenant string, roles ...string) string {
	tok, err := e.iss.Token(tenant, roles...)
	must(e.t, err)
	return tok
}

// do sends one request through the real routes.
func (e *env) do(method, path, token string, body any) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.doCtx(e.t.Context(), method, path, token, body)
}

// doCtx is do with the request's context.
func (e *env) doCtx(ctx context.Context, method, path, token string, body any) *httptest.ResponseRecorder {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		must(e.t, err)
		rd = bytes.NewReader(b)
	}
	req := httptest.NewRequestWithContext(ctx, method, path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	return rec
}

// startRestore POSTs a restore as tenant's backup operator (or with tok)
// and returns its id.
func (e *env) startRestore(tok, tenant string, body map[string]any) string {
	e.t.Helper()
	rec := e.do("POST", "/api/tenants/"+tenant+"/restores", tok, body)
	if rec.Code != http.StatusAccepted {
		e.t.Fatalf("POST restores = %d %s", rec.Code, rec.Body)
	}
	var out struct{ RestoreID, State string }
	must(e.t, json.Unmarshal(rec.Body.Bytes(), &out))
	if out.State != "queued" || rec.Header().Get("Location") != "/api/tenants/"+tenant+"/restores/"+out.RestoreID {
		e.t.Fatalf("POST answer %s, Location %q", rec.Body, rec.Header().Get("Location"))
	}
	return out.RestoreID
}

// hostPayload is a restore-jobs invocation exactly as the Functions host
// sends it: the message text is a JSON string inside a JSON string.
func hostPayload(t testing.TB, job jobqueue.RestoreJob, dequeueCount int) []byte {
	text, err := json.Marshal(job)
	must(t, err)
	inner, _ := json.Marshal(string(text))
	outer, _ := json.Marshal(string(inner))
	return fmt.Appendf(nil, `{"Data":{"job":%s},"Metadata":{"DequeueCount":"%d","Id":"\"m-%d\"","PopReceipt":"\"p\"","InsertionTime":"2026-01-01T00:00:00+00:00","ExpirationTime":"2026-01-08T00:00:00+00:00","NextVisibleTime":"2026-01-01T00:10:00+00:00","sys":{"MethodName":"RestoreWorker","UtcNow":"2026-01-01T00:00:01Z","RandGuid":"5c1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"}}}`,
		outer, dequeueCount, dequeueCount)
}

// deliver hands the latest enqueued job to the RestoreWorker route and
// returns the invocation's status.
func (e *env) deliver(dequeueCount int) int {
	e.t.Helper()
	e.queue.mu.Lock()
	job := e.queue.jobs[len(e.queue.jobs)-1]
	e.queue.mu.Unlock()
	req := httptest.NewRequestWithContext(e.t.Context(), "POST", "/RestoreWorker", bytes.NewReader(hostPayload(e.t, job, dequeueCount)))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	return rec.Code
}

// status GETs a restore as the source tenant's reader.
func (e *env) status(tenant, id string) restoreJSON {
	e.t.Helper()
	rec := e.do("GET", "/api/tenants/"+tenant+"/restores/"+id, e.token(tenant, auth.RoleRead), nil)
	if rec.Code != http.StatusOK {
		e.t.Fatalf("GET restore = %d %s", rec.Code, rec.Body)
	}
	var out restoreJSON
	must(e.t, json.Unmarshal(rec.Body.Bytes(), &out))
	return out
}

type restoreJSON struct {
	RestoreID, BackupID, Tenant, TargetTenant, Mode, State string
	DryRun                                                 bool
	StartedAt, CompletedAt                                 *string
	Progress                                               catalog.Progress
	Error                                                  *struct{ Code, Message string }
}

// runRestore POSTs, delivers the message once and returns the final status.
func (e *env) runRestore(tok, tenant string, body map[string]any) restoreJSON {
	e.t.Helper()
	id := e.startRestore(tok, tenant, body)
	if code := e.deliver(1); code != http.StatusOK {
		e.t.Fatalf("RestoreWorker = %d; log:\n%s", code, e.logs)
	}
	return e.status(tenant, id)
}

// makeBackup backs tenant up the way the backup pipeline does (envelope
// streams 0 records and 1 files of the assets codec, one blob per chunk
// under an attempt directory, manifest, completed catalog row), wrapping
// the data key with the customer key or the platform key.
func (e *env) makeBackup(tenant string, src keywrap.Source) *catalog.Backup {
	e.t.Helper()
	ctx := e.t.Context()
	b := catalog.NewBackup(tenant, catalog.ReasonManual, time.Now())
	must(e.t, e.cat.CreateBackup(ctx, b))
	must(e.t, b.Start("a1", time.Now(), false))
	layout, manifest, wrapped, rc, fc, sink := e.writeAttempt(tenant, b.BackupID, "a1", src)

	b.KeySource, b.KeyID = src, wrapped.KeyID
	b.Records, b.Files, b.Bytes = rc.Records, fc.Files, fc.Bytes
	b.Chunks, b.StoredBytes = sink.chunks, sink.bytes+int64(len(manifest))
	b.ManifestBlob = layout.Manifest()
	b.ManifestDigest = catalog.DigestManifest(manifest)
	b.Streams = map[string]int64{"records": sink.perStream[0], "files": sink.perStream[1]}
	must(e.t, b.Complete(time.Now()))
	must(e.t, e.cat.UpdateBackup(ctx, b))
	return b
}

// writeAttempt writes one attempt's blobs of backup backupID (chunks and
// manifest under attempt's directory) from tenant's assets, as the backup
// pipeline does, and returns what the catalog row records.
func (e *env) writeAttempt(tenant, backupID, attempt string, src keywrap.Source) (blobstore.Layout, []byte, keywrap.Wrapped, assets.Counts, assets.Counts, *syncSink) {
	e.t.Helper()
	ctx := e.t.Context()
	layout, err := blobstore.NewLayout(tenant, backupID, attempt)
	must(e.t, err)

	dk, err := envelope.NewDataKey()
	must(e.t, err)
	ref := e.platRef
	if src == keywrap.Customer {
		ref = e.custRef
		ref.Owner = tenant
	}
	wrapped, err := e.wrapper.Wrap(ctx, ref, dk.Bytes())
	must(e.t, err)
	sink := &syncSink{ctx: ctx, store: e.blobs, layout: layout}
	cs := chunkSize
	if e.backupChunkSize != 0 {
		cs = e.backupChunkSize
	}
	w, err := envelope.NewWriter(dk, tenant, backupID, envelope.NewKeyRef(src, wrapped), sink, &envelope.WriterOptions{ChunkSize: cs})
	must(e.t, err)
	dk.Destroy()

	rs, err := w.Create(ctx, 0)
	must(e.t, err)
	enc := assets.NewEncoder(rs)
	for r, err := range e.store.Records(ctx, tenant) {
		must(e.t, err)
		must(e.t, enc.WriteRecord(r))
	}
	must(e.t, enc.Close())
	must(e.t, rs.Close())
	rc := enc.Counts()

	fs, err := w.Create(ctx, 1)
	must(e.t, err)
	enc = assets.NewEncoder(fs)
	for f, err := range e.store.Files(ctx, tenant) {
		must(e.t, err)
		body, err := e.store.OpenFile(ctx, tenant, f)
		must(e.t, err)
		must(e.t, enc.WriteFile(f, body))
		body.Close()
	}
	must(e.t, enc.Close())
	must(e.t, fs.Close())
	fc := enc.Counts()

	manifest, err := w.Finish()
	must(e.t, err)
	must(e.t, e.blobs.PutBlob(ctx, layout.Manifest(), manifest))

	return layout, manifest, wrapped, rc, fc, sink
}

type syncSink struct {
	ctx           context.Context
	store         blobstore.Store
	layout        blobstore.Layout
	chunks, bytes int64
	perStream     [2]int64
}

func (s *syncSink) PutChunk(ctx context.Context, id uint32, index uint64, sealed []byte) error {
	name := "records"
	if id == 1 {
		name = "files"
	}
	s.chunks++
	s.bytes += int64(len(sealed))
	s.perStream[id]++
	return s.store.PutBlob(ctx, s.layout.Chunk(name, int64(index)), sealed)
}

// snapshot is a tenant's assets: every record and every file with its
// properties and a hash of its content.
type snapshot struct {
	Records []assets.Record
	Files   []fileSnap
}

type fileSnap struct {
	File   assets.File
	SHA256 [32]byte
}

func (e *env) snapshot(tenant string) snapshot {
	e.t.Helper()
	ctx := e.t.Context()
	var s snapshot
	for r, err := range e.store.Records(ctx, tenant) {
		must(e.t, err)
		s.Records = append(s.Records, r)
	}
	for f, err := range e.store.Files(ctx, tenant) {
		must(e.t, err)
		body, err := e.store.OpenFile(ctx, tenant, f)
		must(e.t, err)
		h := sha256.New()
		_, err = io.Copy(h, body)
		body.Close()
		must(e.t, err)
		f.ETag = ""
		var sum [32]byte
		copy(sum[:], h.Sum(nil))
		s.Files = append(s.Files, fileSnap{File: f, SHA256: sum})
	}
	return s
}

// equal compares snapshots, records with assets.Record.Equal (which tells
// a whole Double from an Int32) and files field by field.
func (s snapshot) diff(o snapshot) string {
	if len(s.Records) != len(o.Records) {
		return "records: " + strconv.Itoa(len(s.Records)) + " vs " + strconv.Itoa(len(o.Records))
	}
	for i := range s.Records {
		if !s.Records[i].Equal(o.Records[i]) {
			return fmt.Sprintf("record %d: %+v vs %+v", i, s.Records[i], o.Records[i])
		}
	}
	if len(s.Files) != len(o.Files) {
		return "files: " + strconv.Itoa(len(s.Files)) + " vs " + strconv.Itoa(len(o.Files))
	}
	for i := range s.Files {
		a, b := s.Files[i], o.Files[i]
		if fmt.Sprintf("%+v", a) != fmt.Sprintf("%+v", b) {
			return fmt.Sprintf("file %d: %+v vs %+v", i, a, b)
		}
	}
	return ""
}

// faultTarget is the real target with a hook run before each file commit
// (the write pass), to interrupt a restore mid-write; it counts staged
// blocks too. beforeRecords runs when the write pass opens its record
// writer (the first thing it does); events, when set, logs writes
// ("write", "flush", "commit") and prune steps ("prune") in order, and onEvent sees
// each.
type faultTarget struct {
	restore.Target
	mu            sync.Mutex
	beforeFile    func(ctx context.Context) error
	beforeRecords func()
	filesPut      int
	staged        int
	// inlined counts the files among filesPut written whole (PutFile).
	inlined int
	events  *[]string
	onEvent func(what string)
}

func (f *faultTarget) event(what string) {
	f.mu.Lock()
	if f.events != nil {
		*f.events = append(*f.events, what)
	}
	on := f.onEvent
	f.mu.Unlock()
	if on != nil {
		on(what)
	}
}

func (f *faultTarget) NewRecordWriter(tenant string) (restore.RecordWriter, error) {
	f.mu.Lock()
	hook := f.beforeRecords
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	w, err := f.Target.NewRecordWriter(tenant)
	return eventWriter{w, f}, err
}

func (f *faultTarget) NewRecordPruner(tenant string) (restore.Pruner, error) {
	p, err := f.Target.NewRecordPruner(tenant)
	return eventPruner{p, f}, err
}

func (f *faultTarget) NewFilePruner(tenant string) (restore.Pruner, error) {
	p, err := f.Target.NewFilePruner(tenant)
	return eventPruner{p, f}, err
}

type eventWriter struct {
	restore.RecordWriter
	f *faultTarget
}

func (w eventWriter) Put(ctx context.Context, r assets.Record) error {
	err := w.RecordWriter.Put(ctx, r)
	w.f.event("write")
	return err
}

func (w eventWriter) Flush(ctx context.Context) error {
	err := w.RecordWriter.Flush(ctx)
	w.f.event("flush")
	return err
}

type eventPruner struct {
	restore.Pruner
	f *faultTarget
}

func (p eventPruner) Keep(ctx context.Context, key string) error {
	p.f.event("prune")
	return p.Pruner.Keep(ctx, key)
}

func (p eventPruner) Finish(ctx context.Context) (int64, error) {
	p.f.event("prune")
	return p.Pruner.Finish(ctx)
}

func (f *faultTarget) CommitFile(ctx context.Context, tenant string, file assets.File, ids []string, sum []byte) error {
	f.mu.Lock()
	hook := f.beforeFile
	f.filesPut++
	f.mu.Unlock()
	if hook != nil {
		if err := hook(ctx); err != nil {
			return err
		}
	}
	err := f.Target.CommitFile(ctx, tenant, file, ids, sum)
	if err == nil {
		f.event("commit")
	}
	return err
}

// PutFileBytes is the write pass's one-request write of a small file: a
// file write like CommitFile (same hook, count and event).
func (f *faultTarget) PutFileBytes(ctx context.Context, tenant string, file assets.File, data []byte) error {
	f.mu.Lock()
	hook := f.beforeFile
	f.filesPut++
	f.inlined++
	f.mu.Unlock()
	if hook != nil {
		if err := hook(ctx); err != nil {
			return err
		}
	}
	err := f.Target.PutFileBytes(ctx, tenant, file, data)
	if err == nil {
		f.event("commit")
	}
	return err
}

func (f *faultTarget) StageBlock(ctx context.Context, tenant, path, id string, data []byte) error {
	f.mu.Lock()
	f.staged++
	f.mu.Unlock()
	return f.Target.StageBlock(ctx, tenant, path, id, data)
}

func customerToken() string { return kvemu.CustomerToken(appID, entraTenant) }
