package azure

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/errcode"
)

// TestRecordsReadServiceWrittenJSON reads entities written by another
// client (the app), as raw JSON: a whole double, an unannotated Int32, a
// large double, must keep their types.
func TestRecordsReadServiceWrittenJSON(t *testing.T) {
	s := newTestStore(t, nil)
	ctx := context.Background()
	raw := `{"PartitionKey":"t1","RowKey":"r","whole":3.0,"whole@odata.type":"Edm.Double","int":3,` +
		`"big":1e300,"big@odata.type":"Edm.Double","neg":-2.5,"txt":"3.0",` +
		`"n64":"12","n64@odata.type":"Edm.Int64","ok":false}`
	if _, err := s.table.UpsertEntity(ctx, []byte(raw), nil); err != nil {
		t.Fatal(err)
	}
	got := collect(t, s.Records(ctx, "t1"))
	if len(got) != 1 {
		t.Fatalf("%d records", len(got))
	}
	want := assets.Record{RowKey: "r", Properties: []assets.Property{
		{Name: "whole", Type: assets.TypeDouble, Value: 3.0}, {Name: "int", Type: assets.TypeInt32, Value: int32(3)},
		{Name: "big", Type: assets.TypeDouble, Value: 1e300}, {Name: "neg", Type: assets.TypeDouble, Value: -2.5},
		{Name: "txt", Type: assets.TypeString, Value: "3.0"}, {Name: "n64", Type: assets.TypeInt64, Value: int64(12)},
		{Name: "ok", Type: assets.TypeBoolean, Value: false},
	}}
	want.SortProperties()
	if !want.Equal(got[0]) {
		t.Fatalf("got %+v\nwant %+v", got[0], want)
	}
}

// TestRoundTripIntoAnotherTenant: source → encode → decode → write into
// another tenant → read back, with page sizes small enough that records
// and files span several listing pages.
func TestRoundTripIntoAnotherTenant(t *testing.T) {
	s := newTestStore(t, &Options{RecordPageSize: 7, FilePageSize: 3, BlockSize: 64 << 10})
	ctx := context.Background()
	seeded, err := SeedHook(ctx, s, "src", 40, 10, 150<<10, 1)
	if err != nil {
		t.Fatal(err)
	}
	putRecords(t, s, "src", edgeRecord("zz-edge"))
	seeded.Records++

	var stream bytes.Buffer
	enc := assets.NewEncoder(&stream)
	for r, err := range s.Records(ctx, "src") {
		if err != nil {
			t.Fatal(err)
		}
		if err := enc.WriteRecord(r); err != nil {
			t.Fatal(err)
		}
	}
	for f, err := range s.Files(ctx, "src") {
		if err != nil {
			t.Fatal(err)
		}
		rc, err := s.OpenFile(ctx, "src", f)
		if err != nil {
			t.Fatal(err)
		}
		err = enc.WriteFile(f, rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if enc.Counts() != seeded {
		t.Fatalf("encoded %+v, seeded %+v", enc.Counts(), seeded)
	}

	restored := restoreStream(t, s, bytes.NewReader(stream.Bytes()), "dst", false)
	if restored != seeded {
		t.Fatalf("restored %+v, seeded %+v", restored, seeded)
	}
	assertSameAssets(t, s, "src", "dst")
}

func assertSameAssets(t *testing.T, s *Store, a, b string) {
	t.Helper()
	ra, rb := collect(t, s.Records(context.Background(), a)), collect(t, s.Records(context.Background(), b))
	if !slices.EqualFunc(ra, rb, assets.Record.Equal) {
		t.Errorf("records of %q and %q differ: %d vs %d", a, b, len(ra), len(rb))
		for i := range min(len(ra), len(rb)) {
			if !ra[i].Equal(rb[i]) {
				t.Errorf("first difference:\n%+v\n%+v", ra[i], rb[i])
				break
			}
		}
	}
	fa, fb := readFiles(t, s, a), readFiles(t, s, b)
	if len(fa) != len(fb) {
		t.Fatalf("files of %q and %q: %d vs %d", a, b, len(fa), len(fb))
	}
	for i := range fa {
		if !sameFile(fa[i].File, fb[i].File) || !bytes.Equal(fa[i].Content, fb[i].Content) {
			t.Errorf("file %q differs:\n%+v\n%+v", fa[i].Path, fa[i].File, fb[i].File)
		}
	}
}

// TestTenantIsolation: tenant "a" never sees "ab"'s or "a-b"'s assets,
// nor does replacing "a" touch them.
func TestTenantIsolation(t *testing.T) {
	s := newTestStore(t, nil)
	for _, tenant := range []string{"a", "ab", "a-b", "b"} {
		putRecords(t, s, tenant, assets.Record{RowKey: tenant + "-r", Properties: []assets.Property{{Name: "T", Type: assets.TypeString, Value: tenant}}})
		putFiles(t, s, tenant, newTestFile(assets.File{Path: tenant + "-f", Size: int64(len(tenant))}, []byte(tenant)))
	}
	// A blob whose name merely starts with "a" (no slash) isn't a's.
	putFiles(t, s, "ab", newTestFile(assets.File{Path: "x"}, nil))
	if _, err := s.files.NewBlockBlobClient("a.txt").Upload(context.Background(), nopSeeker(""), nil); err != nil {
		t.Fatal(err)
	}
	recs := collect(t, s.Records(context.Background(), "a"))
	if k := keysOf(recs); !slices.Equal(k, []string{"a-r"}) {
		t.Errorf("records of a: %v", k)
	}
	files := collect(t, s.Files(context.Background(), "a"))
	if len(files) != 1 || files[0].Path != "a-f" {
		t.Errorf("files of a: %+v", files)
	}
	restoreStream(t, s, bytes.NewReader(encodeSample(t, nil, nil)), "a", true)
	for _, other := range []string{"ab", "a-b", "b"} {
		if len(collect(t, s.Records(context.Background(), other))) != 1 || len(collect(t, s.Files(context.Background(), other))) == 0 {
			t.Errorf("replacing a changed %q", other)
		}
	}
	for _, bad := range []string{"", "A", "a/b", "a'b", "-a", strings.Repeat("x", 64)} {
		if err := assets.CheckTenant(bad); errcode.CodeOf(err) != errcode.InvalidRequest {
			t.Errorf("CheckTenant(%q) = %v", bad, err)
		}
		for _, err := range s.Records(context.Background(), bad) {
			if errcode.CodeOf(err) != errcode.InvalidRequest {
				t.Errorf("Records(%q) yielded %v", bad, err)
			}
		}
	}
}

func nopSeeker(s string) io.ReadSeekCloser {
	return struct {
		io.ReadSeeker
		io.Closer
	}{strings.NewReader(s), io.NopCloser(nil)}
}

func TestPrunerRejectsUnsortedBackupKeys(t *testing.T) {
	s := newTestStore(t, &Options{BatchSize: 1}) // delete at once, to see what was deleted
	putRecords(t, s, "t1", assets.Record{RowKey: "a"}, assets.Record{RowKey: "b"}, assets.Record{RowKey: "c"})
	p, _ := s.NewRecordPruner("t1")
	ctx := context.Background()
	if err := p.Keep(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if err := p.Keep(ctx, "b"); !errors.Is(err, assets.ErrOutOfOrder) {
		t.Fatalf("Keep after a larger key: %v, want ErrOutOfOrder", err)
	}
	// Only keys proven absent were deleted: a and b (b was below c).
	if k := keysOf(collect(t, s.Records(ctx, "t1"))); !slices.Equal(k, []string{"c"}) {
		t.Fatalf("left %v", k)
	}
}

// TestBatchFallsBackToSingleUpserts: a transaction the service refuses
// (an entity over the 1 MiB limit) is retried one by one; the good records
// are written and the error names the count.
func TestBatchFallsBackToSingleUpserts(t *testing.T) {
	var logs bytes.Buffer
	s := newTestStore(t, &Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	big := assets.Record{RowKey: "big"}
	for i := range 20 {
		big.Properties = append(big.Properties, assets.Property{Name: fmt.Sprintf("p%02d", i), Type: assets.TypeString, Value: strings.Repeat("x", 60000)})
	}
	w, _ := s.NewRecordWriter("t1")
	ctx := context.Background()
	for _, r := range []assets.Record{{RowKey: "a"}, big, {RowKey: "c"}} {
		if err := w.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	err := w.Flush(ctx)
	if err == nil {
		t.Fatal("a 1.2 MB entity was accepted")
	}
	if e, ok := errcode.As(err); !ok || !strings.Contains(e.Message, "1 of 3 records") {
		t.Fatalf("error %v", err)
	}
	if k := keysOf(collect(t, s.Records(ctx, "t1"))); !slices.Equal(k, []string{"a", "c"}) {
		t.Fatalf("records after fallback: %v", k)
	}
	if w.Written() != 2 {
		t.Fatalf("Written = %d", w.Written())
	}
	// The fallback is logged through the injected logger, without data.
	if !strings.Contains(logs.String(), `"msg":"record transaction failed, upserting one by one"`) ||
		strings.Contains(logs.String(), "xxxxxxxx") {
		t.Fatalf("log: %.300s", logs.String())
	}
}

// TestPutFileStagedBlocks: a file larger than the block size goes in
// blocks with every property, metadata and the whole content's MD5.
func TestPutFileStagedBlocks(t *testing.T) {
	for _, size := range []int64{0, 1, 64 << 10, 64<<10 + 1, 3*64<<10 - 1, 5 * 64 << 10} {
		t.Run(fmt.Sprintf("size=%d", size), func(t *testing.T) {
			s := newTestStore(t, &Options{BlockSize: 64 << 10, UploadConcurrency: 3})
			content := make([]byte, size)
			(&prngReader{r: newRand(uint64(size))}).Read(content)
			f := assets.File{Path: "dir/big file.bin", Size: size, ContentType: "application/x-twin", ContentEncoding: "gzip",
				ContentLanguage: "fr", ContentDisposition: `attachment; filename="x"`, CacheControl: "no-store",
				Metadata: map[string]string{"CamelCase": "v1", "lower_2": "v 2; x=y"}}
			putFiles(t, s, "t1", newTestFile(f, content))
			got := readFiles(t, s, "t1")
			// azblob lowercases metadata names in listings (names are
			// case-insensitive in Azure); see doc.go.
			f.Metadata = map[string]string{"camelcase": "v1", "lower_2": "v 2; x=y"}
			if len(got) != 1 || !sameFile(got[0].File, f) || !bytes.Equal(got[0].Content, content) {
				t.Fatalf("got %+v (%d bytes)", got, len(got[0].Content))
			}
			props, err := s.files.NewBlobClient("t1/dir/big file.bin").GetProperties(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if sum := md5.Sum(content); !bytes.Equal(props.ContentMD5, sum[:]) {
				t.Errorf("Content-MD5 %x, want %x", props.ContentMD5, sum)
			}
		})
	}
}

// TestMissingTableAndContainerAreErrors: an existing table and container
// without the tenant's data are an empty tenant; a missing table or
// container is a configuration slip, reported as ErrSourceMissing with a
// message naming the setting, never read as "no assets".
func TestMissingTableAndContainerAreErrors(t *testing.T) {
	s := newTestStore(t, nil)
	ctx := context.Background()
	putRecords(t, s, "other", assets.Record{RowKey: "a"})
	if n := len(collect(t, s.Records(ctx, "t1"))) + len(collect(t, s.Files(ctx, "t1"))); n != 0 {
		t.Fatalf("empty tenant: %d assets", n)
	}
	if _, err := s.table.Delete(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.files.Delete(ctx, nil); err != nil {
		t.Fatal(err)
	}
	check := func(what, setting string, err error, n int) {
		t.Helper()
		code, msg := errcode.Public(err)
		if !errors.Is(err, assets.ErrSourceMissing) || n != 0 || code != errcode.ServiceUnavailable || !strings.Contains(msg, setting) {
			t.Errorf("missing %s: %d items, err %v (%s %q); want ErrSourceMissing naming %s", what, n, err, code, msg, setting)
		}
	}
	var n int
	var rerr, ferr error
	for _, err := range s.Records(ctx, "t1") {
		if err != nil {
			rerr = err
			break
		}
		n++
	}
	check("table", "TABLE_ASSETS", rerr, n)
	n = 0
	for _, err := range s.Files(ctx, "t1") {
		if err != nil {
			ferr = err
			break
		}
		n++
	}
	check("container", "CONTAINER_ASSETS", ferr, n)
}

func TestOptionsTakeEffect(t *testing.T) {
	s := newTestStore(t, &Options{RecordPageSize: 2, FilePageSize: 2, BatchSize: 2, BlockSize: 1 << 10, UploadConcurrency: 1})
	if s.opts.RecordPageSize != 2 || s.opts.FilePageSize != 2 || s.opts.BatchSize != 2 || s.opts.BlockSize != 1<<10 || s.opts.UploadConcurrency != 1 {
		t.Fatalf("options not kept: %+v", s.opts)
	}
	// The page size reaches the service: one page holds 2 records.
	putRecords(t, s, "t1", assets.Record{RowKey: "a"}, assets.Record{RowKey: "b"}, assets.Record{RowKey: "c"})
	pager := s.table.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: to.Ptr(partitionFilter("t1")), Top: to.Ptr(s.opts.RecordPageSize)})
	page, err := pager.NextPage(context.Background())
	if err != nil || len(page.Entities) != 2 {
		t.Fatalf("first page: %d entities, %v", len(page.Entities), err)
	}
	// The block size reaches the upload: a 2.5 KiB file has 3 blocks.
	putFiles(t, s, "t1", newTestFile(assets.File{Path: "f", Size: 2560}, bytes.Repeat([]byte{1}, 2560)))
	bl, err := s.files.NewBlockBlobClient("t1/f").GetBlockList(context.Background(), blockblob.BlockListTypeCommitted, nil)
	if err != nil || len(bl.CommittedBlocks) != 3 {
		t.Fatalf("%d committed blocks, %v", len(bl.CommittedBlocks), err)
	}
	d := New(s.table, s.files, nil).opts
	if d.RecordPageSize != 1000 || d.BatchSize != 100 || d.BlockSize != 4<<20 || d.UploadConcurrency != 2 || d.Logger == nil {
		t.Fatalf("defaults: %+v", d)
	}
}

var _ = blob.HTTPHeaders{}

// inFlight is an HTTP transport that counts the table transactions in
// flight at once; each is held a little so that overlap is certain when
// the writer allows it.
type inFlight struct {
	mu       sync.Mutex
	now, max int
}

func (c *inFlight) Do(req *http.Request) (*http.Response, error) {
	batch := strings.HasSuffix(req.URL.Path, "/$batch")
	if batch {
		c.mu.Lock()
		c.now++
		c.max = max(c.max, c.now)
		c.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		defer func() { c.mu.Lock(); c.now--; c.mu.Unlock() }()
	}
	return http.DefaultClient.Do(req)
}

// TestRecordTransactionsInFlight: a RecordWriter keeps up to
// BatchConcurrency transactions in flight (a restore of 200,000 records was
// 2,000 round trips end to end), never more, and writes every record.
func TestRecordTransactionsInFlight(t *testing.T) {
	for _, conc := range []int{1, 4} {
		t.Run(fmt.Sprintf("concurrency=%d", conc), func(t *testing.T) {
			counter := &inFlight{}
			tsvc, err := aztables.NewServiceClientFromConnectionString(testAzurite.ConnectionString(),
				&aztables.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: counter}})
			if err != nil {
				t.Fatal(err)
			}
			base := newTestStore(t, nil)
			s := New(tsvc.NewClient(fmt.Sprintf("InFlight%d", testSeq.Add(1))), base.files, &Options{BatchSize: 10, BatchConcurrency: conc})
			if err := s.Ensure(t.Context()); err != nil {
				t.Fatal(err)
			}
			w, err := s.NewRecordWriter("t1")
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			for i := range 400 {
				if err := w.Put(ctx, assets.Record{RowKey: fmt.Sprintf("r%04d", i)}); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if n := len(collect(t, s.Records(ctx, "t1"))); n != 400 || w.Written() != 400 {
				t.Fatalf("%d records stored, Written %d, want 400", n, w.Written())
			}
			if counter.max != conc {
				t.Fatalf("at most %d transactions in flight, want %d", counter.max, conc)
			}
		})
	}
}
