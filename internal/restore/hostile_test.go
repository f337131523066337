package restore_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	blobazure "github.com/twinit/byok-backup/internal/blobstore/azure"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/devstack/azurite"
	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/envelope"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// TestOtherAttemptOfTheSameBackupIsRefused: a completed backup whose blobs
// were replaced by another attempt's of the same backup id (a valid
// manifest and chunks of the same tenant and backup, under another data
// key, that were never committed) fails with IntegrityCheckFailed before
// anything is written: the row pins the committed manifest's digest.
func TestOtherAttemptOfTheSameBackupIsRefused(t *testing.T) {
	e := newEnv(t)
	e.seed("acme", 8, 3)
	b := e.makeBackup("acme", keywrap.Customer)
	// The other attempt, of the same data (so its counts match the row),
	// writes its blobs over the committed attempt's names (a zombie
	// attempt, or someone copying them there).
	_, manifest, _, _, _, _ := e.writeAttempt("acme", b.BackupID, "a1", keywrap.Customer)
	if catalog.DigestManifest(manifest) == b.ManifestDigest || !bytes.Equal(manifest, e.get(b.ManifestBlob)) {
		t.Fatal("the other attempt's manifest is not in place")
	}
	e.disturb("acme")
	before := e.snapshot("acme")
	op := e.token("acme", auth.RoleBackupOperator)
	for _, body := range []map[string]any{
		{"backupId": b.BackupID, "mode": "replace"},
		{"backupId": b.BackupID, "dryRun": true},
	} {
		wantFailed(t, e.runRestore(op, "acme", body), "IntegrityCheckFailed")
		if d := e.snapshot("acme").diff(before); d != "" {
			t.Fatalf("the refused restore changed the target: %s", d)
		}
	}
}

// TestRowWithoutDigestStillRestores: rows committed before the digest was
// recorded restore the manifest in the attempt folder the row names,
// authenticated as before; tampering with it still fails.
func TestRowWithoutDigestStillRestores(t *testing.T) {
	e := newEnv(t)
	e.seed("acme", 8, 3)
	want := e.snapshot("acme")
	b := e.makeBackup("acme", keywrap.Customer)
	b.ManifestDigest = ""
	must(t, e.cat.UpdateBackup(t.Context(), b))
	e.disturb("acme")
	op := e.token("acme", auth.RoleBackupOperator)
	wantSucceeded(t, e.runRestore(op, "acme", map[string]any{"backupId": b.BackupID, "mode": "replace"}), progress{b.Records, b.Files, b.Bytes})
	if d := e.snapshot("acme").diff(want); d != "" {
		t.Fatalf("restored: %s", d)
	}
	data := e.get(b.ManifestBlob)
	data[len(data)-40] ^= 0x80
	e.put(b.ManifestBlob, data)
	wantFailed(t, e.runRestore(op, "acme", map[string]any{"backupId": b.BackupID, "dryRun": true}), "IntegrityCheckFailed")
}

// algRecorder records the algorithm of every unwrap the restore asks for.
type algRecorder struct {
	keywrap.Wrapper
	mu   sync.Mutex
	algs []string
}

func (a *algRecorder) Unwrap(ctx context.Context, ref keywrap.Ref, w keywrap.Wrapped) ([]byte, error) {
	a.mu.Lock()
	a.algs = append(a.algs, w.Algorithm)
	a.mu.Unlock()
	return a.Wrapper.Unwrap(ctx, ref, w)
}

// TestClearAlgorithmNeverReachesKeyVault: a manifest whose clear part
// names RSA1_5 or RSA-OAEP (SHA-1) is refused with IntegrityCheckFailed
// and Key Vault is never asked to unwrap with anything but RSA-OAEP-256,
// whether or not the row pins the manifest's digest.
func TestClearAlgorithmNeverReachesKeyVault(t *testing.T) {
	e := newEnv(t)
	rec := &algRecorder{Wrapper: e.wrapper}
	e.wrapper = rec
	e.wire(e.keys)
	e.seed("acme", 4, 2)
	op := e.token("acme", auth.RoleBackupOperator)
	field := append([]byte{byte(len(keywrap.Algorithm))}, keywrap.Algorithm...)
	for _, alg := range []string{"RSA1_5", "RSA-OAEP"} {
		for _, pinned := range []bool{true, false} {
			t.Run(alg+"/pinned="+strconv.FormatBool(pinned), func(t *testing.T) {
				e.t = t
				b := e.makeBackup("acme", keywrap.Customer)
				if !pinned {
					b.ManifestDigest = ""
					must(t, e.cat.UpdateBackup(t.Context(), b))
				}
				data := e.get(b.ManifestBlob)
				if bytes.Count(data, field) != 1 {
					t.Fatal("algorithm field not found in the manifest")
				}
				e.put(b.ManifestBlob, bytes.Replace(data, field, append([]byte{byte(len(alg))}, alg...), 1))
				rec.mu.Lock()
				rec.algs = nil
				rec.mu.Unlock()
				wantFailed(t, e.runRestore(op, "acme", map[string]any{"backupId": b.BackupID, "dryRun": true}), "IntegrityCheckFailed")
				rec.mu.Lock()
				defer rec.mu.Unlock()
				for _, a := range rec.algs {
					if a != keywrap.Algorithm {
						t.Fatalf("Key Vault was asked to unwrap with %q", a)
					}
				}
			})
		}
	}
}

// TestHostileBlobSizesFailWithoutAllocating: storage that claims a huge
// Content-Length for the manifest or a chunk (a 1 GiB claim through a
// proxy in front of Azurite, the real azblob client reading it) fails the
// restore with IntegrityCheckFailed at once, not after retries, and the
// claim is never allocated; so is a manifest whose stream table claims a
// petabyte, and a real chunk one byte larger than a sealed chunk can be.
func TestHostileBlobSizesFailWithoutAllocating(t *testing.T) {
	e := newEnv(t)
	e.seed("acme", 8, 3)
	const claim = 1 << 30
	var (
		mu     sync.Mutex
		target string // the blob path whose size the proxy lies about
	)
	up, err := url.Parse(azuriteFor(t).BlobURL())
	must(t, err)
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: up.Scheme, Host: up.Host})
	proxy.ModifyResponse = func(resp *http.Response) error {
		mu.Lock()
		lie := target != "" && resp.Request.Method == http.MethodGet && strings.HasSuffix(resp.Request.URL.Path, "/"+target)
		mu.Unlock()
		if lie {
			resp.Header.Set("Content-Length", strconv.Itoa(claim))
			resp.ContentLength = claim
		}
		return nil
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	conn := "DefaultEndpointsProtocol=http;AccountName=" + azurite.AccountName + ";AccountKey=" + azurite.AccountKey +
		";BlobEndpoint=" + srv.URL + "/" + azurite.AccountName + ";"
	client, err := azblob.NewClientFromConnectionString(conn, nil)
	must(t, err)
	bs := blobazure.New(client.ServiceClient().NewContainerClient("hostile" + strconv.FormatInt(seq.Add(1), 10)))
	must(t, bs.CreateContainer(t.Context()))
	e.blobs = bs
	e.wire(e.keys)
	op := e.token("acme", auth.RoleBackupOperator)

	for _, c := range []struct {
		name string
		blob func(b *catalog.Backup) string
	}{
		{"manifest claims 1 GiB", func(b *catalog.Backup) string { return b.ManifestBlob }},
		{"chunk claims 1 GiB", func(b *catalog.Backup) string { return e.chunk(b, "files", 1) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			b := e.makeBackup("acme", keywrap.Customer)
			mu.Lock()
			target = c.blob(b)
			mu.Unlock()
			defer func() { mu.Lock(); target = ""; mu.Unlock() }()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			st := e.runRestore(op, "acme", map[string]any{"backupId": b.BackupID, "dryRun": true})
			runtime.ReadMemStats(&m1)
			wantFailed(t, st, "IntegrityCheckFailed")
			if grew := m1.TotalAlloc - m0.TotalAlloc; grew > claim/4 {
				t.Fatalf("the restore allocated %d bytes for a %d-byte claim", grew, claim)
			}
		})
	}
	// A manifest whose stream table claims 2^40 chunks (1 PiB), consistent
	// enough to parse: refused by the row's digest, or for a row without
	// one by authentication, before anything is sized from it.
	for _, pinned := range []bool{true, false} {
		t.Run("manifest claims 2^40 chunks/pinned="+strconv.FormatBool(pinned), func(t *testing.T) {
			e.t = t
			b := e.makeBackup("acme", keywrap.Customer)
			if !pinned {
				b.ManifestDigest = ""
				must(t, e.cat.UpdateBackup(t.Context(), b))
			}
			data := e.get(b.ManifestBlob)
			entry := data[len(data)-32-28:] // the files stream, the last entry
			const chunks = 1 << 40
			binary.BigEndian.PutUint64(entry[4:], chunks)
			binary.BigEndian.PutUint64(entry[12:], chunks*chunkSize)
			binary.BigEndian.PutUint64(entry[20:], chunks*(chunkSize+16))
			if _, err := envelope.ParseManifest(data); err != nil {
				t.Fatalf("the crafted manifest does not parse: %v", err)
			}
			e.put(b.ManifestBlob, data)
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			st := e.runRestore(op, "acme", map[string]any{"backupId": b.BackupID, "dryRun": true})
			runtime.ReadMemStats(&m1)
			wantFailed(t, st, "IntegrityCheckFailed")
			if grew := m1.TotalAlloc - m0.TotalAlloc; grew > claim/4 {
				t.Fatalf("the restore allocated %d bytes", grew)
			}
		})
	}
	t.Run("chunk one byte too large", func(t *testing.T) {
		e.t = t
		b := e.makeBackup("acme", keywrap.Customer)
		e.put(e.chunk(b, "records", 0), make([]byte, chunkSize+16+1))
		wantFailed(t, e.runRestore(op, "acme", map[string]any{"backupId": b.BackupID, "dryRun": true}), "IntegrityCheckFailed")
	})
}
