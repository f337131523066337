package rewrap

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/audit"
	audittable "github.com/twinit/byok-backup/internal/audit/aztable"
	"github.com/twinit/byok-backup/internal/backup"
	"github.com/twinit/byok-backup/internal/blobstore"
	blobazure "github.com/twinit/byok-backup/internal/blobstore/azure"
	"github.com/twinit/byok-backup/internal/byok"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/catalog/aztable"
	"github.com/twinit/byok-backup/internal/credential"
	"github.com/twinit/byok-backup/internal/devstack/azurite"
	"github.com/twinit/byok-backup/internal/devstack/kvemu"
	"github.com/twinit/byok-backup/internal/envelope"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/job"
	"github.com/twinit/byok-backup/internal/jobqueue"
	"github.com/twinit/byok-backup/internal/keywrap"
	"github.com/twinit/byok-backup/internal/keywrap/keyvault"
	"github.com/twinit/byok-backup/internal/lease"
	leasetable "github.com/twinit/byok-backup/internal/lease/aztable"
	"github.com/twinit/byok-backup/internal/restore"
)

var storage *azurite.Instance

func TestMain(m *testing.M) { azurite.RunTests(m, &storage) }

const (
	appID       = "4ab9f542-0305-4d62-94c9-69786fb5d1ec"
	entraTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	vault       = "contoso-kv"
	keyName     = "twinit-backup"
	platVault   = "platform-kv"
	platKey     = "platform-backup"
	tenant      = "acme"
)

var seq atomic.Int64

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// keySettings is the tenant's BYOK configuration as the services read it.
type keySettings struct {
	mu      sync.Mutex
	enabled bool
	ref     keywrap.Ref
}

func (k *keySettings) CustomerKey(ctx context.Context, tn string) (keywrap.Ref, byok.Settings, bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	ref := k.ref
	ref.Owner = tn
	return ref, byok.Settings{KeyVaultName: vault, KeyName: keyName, TenantID: entraTenant, FallbackToPlatformKey: true}, k.enabled, nil
}

func (k *keySettings) Status(ctx context.Context, tn string) (byok.Status, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.enabled {
		return byok.Status{Tenant: tn, State: byok.Disabled}, nil
	}
	return byok.Status{Tenant: tn, State: byok.Active}, nil
}

type queue struct {
	mu   sync.Mutex
	jobs []jobqueue.RewrapJob
}

func (q *queue) Enqueue(ctx context.Context, name string, msg any) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if name != jobqueue.RewrapQueue {
		return fmt.Errorf("unexpected queue %s", name)
	}
	q.jobs = append(q.jobs, msg.(jobqueue.RewrapJob))
	return nil
}

// counting counts the Wrap and Unwrap calls that reach Key Vault.
type counting struct {
	keywrap.Wrapper
	wraps, unwraps atomic.Int64
}

func (c *counting) Wrap(ctx context.Context, ref keywrap.Ref, dk []byte) (keywrap.Wrapped, error) {
	c.wraps.Add(1)
	return c.Wrapper.Wrap(ctx, ref, dk)
}

func (c *counting) Unwrap(ctx context.Context, ref keywrap.Ref, w keywrap.Wrapped) ([]byte, error) {
	c.unwraps.Add(1)
	return c.Wrapper.Unwrap(ctx, ref, w)
}

// callCounter is an azcore policy counting requests by table (the first
// path segment, without its key predicate).
type callCounter struct {
	mu sync.Mutex
	n  map[string]int64
	d  time.Duration // total time in requests
}

func (c *callCounter) Do(req *policy.Request) (*http.Response, error) {
	p := strings.TrimPrefix(req.Raw().URL.Path, "/")
	p = strings.TrimPrefix(p, "devstoreaccount1/")
	if i := strings.IndexAny(p, "(/"); i >= 0 {
		p = p[:i]
	}
	start := time.Now()
	resp, err := req.Next()
	c.mu.Lock()
	c.n[p]++
	c.d += time.Since(start)
	c.mu.Unlock()
	return resp, err
}

func (c *callCounter) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.n))
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

type env struct {
	t testing.TB
	// tableCalls counts Table Storage requests by table.
	tableCalls *callCounter
	emu        *kvemu.Emulator
	inner      keywrap.Wrapper // unaudited, uncounted: the test's own setup
	count      *counting
	auditLog   *audit.Log
	cat        *aztable.Store
	rewraps    *aztable.Rewraps
	blobs      blobstore.Store
	keys       *keySettings
	queue      *queue
	leases     *lease.Manager
	svc        *Service
	restores   *restore.Service
	custRef    keywrap.Ref
	platRef    keywrap.Ref
	log        *slog.Logger
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := t.Context()
	n := seq.Add(1)
	e := &env{t: t, keys: &keySettings{enabled: true}, queue: &queue{}, log: slog.New(slog.DiscardHandler), tableCalls: &callCounter{n: map[string]int64{}}}
	e.emu = kvemu.TestStart(t)
	must(t, e.emu.CreateVault(vault, entraTenant, kvemu.AccessPolicy))
	must(t, e.emu.Grant(vault, kvemu.CustomerToken(appID, entraTenant), "get", "wrapKey", "unwrapKey"))
	_, err := e.emu.CreateKey(vault, keyName, "RSA", 2048, nil)
	must(t, err)
	must(t, e.emu.SetTags(vault, keyName, "", map[string]string{keywrap.DefaultOwnershipTag: tenant}))
	must(t, e.emu.CreateVault(platVault, entraTenant, kvemu.AccessPolicy))
	must(t, e.emu.Grant(platVault, kvemu.PlatformToken, "get", "wrapKey", "unwrapKey"))
	_, err = e.emu.CreateKey(platVault, platKey, "RSA", 2048, nil)
	must(t, err)
	creds, err := credential.New(credential.Options{Mode: credential.Emulator, AppClientID: appID, PlatformMode: credential.Emulator})
	must(t, err)
	w, err := keyvault.New(keyvault.Options{Credentials: creds, ApplicationID: appID, CAPEM: e.emu.CAPEM(),
		MaxRetries: 1, RetryDelay: 10 * time.Millisecond, MaxRetryDelay: time.Second, TryTimeout: 5 * time.Second,
		OwnershipTag: keywrap.DefaultOwnershipTag})
	must(t, err)
	e.inner = w
	e.count = &counting{Wrapper: w}
	pu, err := keywrap.VaultURL(e.emu.URLTemplate(), platVault)
	must(t, err)
	e.platRef = keywrap.Ref{Source: keywrap.Platform, VaultURL: pu, KeyName: platKey}
	cu, err := keywrap.VaultURL(e.emu.URLTemplate(), vault)
	must(t, err)
	e.custRef = keywrap.Ref{Source: keywrap.Customer, VaultURL: cu, KeyName: keyName, TenantID: entraTenant}
	e.keys.ref = e.custRef

	tables, err := aztables.NewServiceClientFromConnectionString(storage.ConnectionString(),
		&aztables.ClientOptions{ClientOptions: azcore.ClientOptions{PerCallPolicies: []policy.Policy{e.tableCalls}}})
	must(t, err)
	blobSvc, err := azblob.NewClientFromConnectionString(storage.ConnectionString(), nil)
	must(t, err)
	e.cat = aztable.New(tables.NewClient(fmt.Sprintf("Backups%d", n)), tables.NewClient(fmt.Sprintf("Restores%d", n)))
	must(t, e.cat.CreateTables(ctx))
	e.rewraps = aztable.NewRewraps(tables.NewClient(fmt.Sprintf("Rewraps%d", n)))
	must(t, e.rewraps.CreateTable(ctx))
	e.auditLog = audit.New(audittable.New(tables.NewClient(fmt.Sprintf("KeyAudit%d", n))), nil)
	must(t, e.auditLog.EnsureTable(ctx))
	cc := blobSvc.ServiceClient().NewContainerClient(fmt.Sprintf("backups%d", n))
	if _, err := cc.Create(ctx, nil); err != nil {
		t.Fatal(err)
	}
	e.blobs = blobazure.New(cc)
	e.leases = lease.NewWith(leasetable.New(tables.NewClient(fmt.Sprintf("Leases%d", n))), nil)
	must(t, e.leases.CreateTable(ctx))
	e.svc = e.newService(t, e.cat)
	e.restores, err = restore.New(restore.Options{Catalog: e.cat, Blobs: e.blobs, Target: noTarget{}, Wrapper: e.inner, Keys: e.keys,
		PlatformKey: e.platRef, URLTemplate: e.emu.URLTemplate(), Leases: e.leases, Queue: discardQueue{}})
	must(t, err)
	return e
}

func (e *env) newService(t testing.TB, backups Backups) *Service {
	s, err := New(Options{Backups: backups, Rewraps: e.rewraps, Blobs: e.blobs,
		Wrapper: audit.NewWrapper(e.count, e.auditLog, nil), Keys: e.keys, PlatformKey: e.platRef,
		URLTemplate: e.emu.URLTemplate(), Leases: e.leases, Queue: e.queue, Logger: e.log,
		Retry: &blobstore.RetryOptions{MaxAttempts: 2, BaseDelay: time.Millisecond}})
	must(t, err)
	return s
}

type noTarget struct{ restore.Target }

type discardQueue struct{}

func (discardQueue) Enqueue(context.Context, string, any) error { return nil }

// chunkSink stores a tiny backup's chunks as the backup pipeline names them.
type chunkSink struct {
	blobs  blobstore.Store
	layout blobstore.Layout
}

func (s chunkSink) PutChunk(ctx context.Context, id uint32, index uint64, sealed []byte) error {
	return s.blobs.PutBlob(ctx, s.layout.Chunk(backup.StreamName(id), int64(index)), sealed)
}

// makeBackup writes a small but complete backup (one record, no files)
// whose data key ref wraps, and its completed catalog row; the wrap goes
// to Key Vault uncounted.
func (e *env) makeBackup(ctx context.Context, ref keywrap.Ref, at time.Time) *catalog.Backup {
	t := e.t
	id := catalog.NewID(at)
	dk, err := envelope.NewDataKey()
	must(t, err)
	defer dk.Destroy()
	ref.Owner = tenant
	w, err := e.inner.Wrap(ctx, ref, dk.Bytes())
	must(t, err)
	l, err := blobstore.NewLayout(tenant, id, job.NewAttemptID())
	must(t, err)
	ew, err := envelope.NewWriter(dk, tenant, id, envelope.NewKeyRef(ref.Source, w), chunkSink{e.blobs, l}, &envelope.WriterOptions{ChunkSize: 1024})
	must(t, err)
	var counts assets.Counts
	for _, sid := range []uint32{backup.StreamRecords, backup.StreamFiles} {
		sw, err := ew.Create(ctx, sid)
		must(t, err)
		enc := assets.NewEncoder(sw)
		if sid == backup.StreamRecords {
			must(t, enc.WriteRecord(assets.Record{RowKey: "asset-" + id}))
		}
		must(t, enc.Close())
		c := enc.Counts()
		counts.Records += c.Records
		counts.Files += c.Files
		counts.Bytes += c.Bytes
		must(t, sw.Close())
	}
	m, err := ew.Finish()
	must(t, err)
	must(t, e.blobs.PutBlob(ctx, l.Manifest(), m))
	b := catalog.NewBackup(tenant, catalog.ReasonManual, at)
	b.BackupID = id
	b.Status = catalog.StatusCompleted
	b.StartedAt, b.CompletedAt = at, at
	b.KeySource, b.KeyID = ref.Source, w.KeyID
	if ref.Source == keywrap.Customer {
		b.EntraTenantID = entraTenant
	}
	b.Records, b.Files, b.Bytes, b.Chunks = counts.Records, counts.Files, counts.Bytes, 2
	b.ManifestBlob, b.ManifestDigest = l.Manifest(), catalog.DigestManifest(m)
	b.Streams = map[string]int64{"records": 1, "files": 1}
	must(t, e.cat.CreateBackup(ctx, b))
	return b
}

// verify runs a restore dry run of backupID through the restore service
// (its key loading, digest pin and full authentication) and returns its
// outcome: nil or the failure's code.
func (e *env) verify(ctx context.Context, backupID string) error {
	r := catalog.NewRestore(tenant, backupID, "", "", true, time.Now())
	must(e.t, e.cat.CreateRestore(ctx, r))
	if err := e.restores.RunJob(ctx, jobqueue.RestoreJob{Tenant: tenant, RestoreID: r.RestoreID}, jobqueue.Delivery{DequeueCount: 5}); err != nil {
		return err
	}
	got, err := e.cat.GetRestore(ctx, tenant, r.RestoreID)
	must(e.t, err)
	if got.State != catalog.RestoreSucceeded {
		return errcode.New(got.Error.Code, "%s", got.Error.Message)
	}
	return nil
}

// start queues a re-wrap through the service and returns its job.
func (e *env) start(ctx context.Context, req Request) jobqueue.RewrapJob {
	r, err := e.svc.Start(ctx, tenant, req)
	must(e.t, err)
	return jobqueue.RewrapJob{Tenant: tenant, RewrapID: r.RewrapID}
}

func (e *env) run(ctx context.Context, j jobqueue.RewrapJob, dequeue int) error {
	return e.svc.RunJob(ctx, j, jobqueue.Delivery{DequeueCount: dequeue})
}

func (e *env) rewrapRow(ctx context.Context, id string) *catalog.Rewrap {
	r, err := e.rewraps.GetRewrap(ctx, tenant, id)
	must(e.t, err)
	return r
}

func (e *env) backup(ctx context.Context, id string) *catalog.Backup {
	b, err := e.cat.GetBackup(ctx, tenant, id)
	must(e.t, err)
	return b
}
