package backup_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"iter"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/backup"
	"github.com/twinit/byok-backup/internal/catalog"
)

// largeFile is above the read-ahead's 1 MiB bound, so it is streamed.
const largeFile = 1<<20 + 4<<10

// seedMixed writes n files with varied small sizes (0 B to 40 KiB) and a
// large one every 20th, names in listing order. Sizes and bytes are fixed
// by the index so a test can rewrite one file with other content.
func (e *env) seedMixed(tenant string, n int) []assets.File {
	e.t.Helper()
	var files []assets.File
	for i := range n {
		size := int64(i*7919) % (40 << 10)
		if i%20 == 7 {
			size = largeFile + int64(i)
		}
		f := assets.File{Path: fmt.Sprintf("docs/%03d.bin", i), Size: size, ContentType: "application/octet-stream",
			Metadata: map[string]string{"n": fmt.Sprint(i)}}
		e.putFile(tenant, f, byte(i))
		files = append(files, f)
	}
	return files
}

// putFile writes f with content derived from seed.
func (e *env) putFile(tenant string, f assets.File, seed byte) {
	e.t.Helper()
	b := make([]byte, f.Size)
	for j := range b {
		b[j] = seed + byte(j*31)
	}
	must(e.t, e.assets.PutFile(e.t.Context(), tenant, f, bytes.NewReader(b)))
}

// hookSource calls onList as each file is listed (before the backup reads
// it) and measures how many files are being read at once.
type hookSource struct {
	backup.Source
	onList func(assets.File)

	mu       sync.Mutex
	inFlight int
	maxSeen  int
	second   chan struct{} // closed when two reads overlap
	once     sync.Once
}

func newHookSource(src backup.Source, onList func(assets.File)) *hookSource {
	return &hookSource{Source: src, onList: onList, second: make(chan struct{})}
}

func (h *hookSource) Files(ctx context.Context, tenant string) iter.Seq2[assets.File, error] {
	return func(yield func(assets.File, error) bool) {
		for f, err := range h.Source.Files(ctx, tenant) {
			if err == nil && h.onList != nil {
				h.onList(f)
			}
			if !yield(f, err) {
				return
			}
		}
	}
}

// OpenFile counts a read from the open to the body's Close. The first read
// waits (up to 5 s) for a second one to start, so a backup that reads one
// file at a time shows up as a peak of 1.
func (h *hookSource) OpenFile(ctx context.Context, tenant string, f assets.File) (io.ReadCloser, error) {
	h.mu.Lock()
	h.inFlight++
	h.maxSeen = max(h.maxSeen, h.inFlight)
	first := h.maxSeen == 1 && h.inFlight == 1
	if h.inFlight == 2 {
		h.once.Do(func() { close(h.second) })
	}
	h.mu.Unlock()
	if first {
		select {
		case <-h.second:
		case <-time.After(5 * time.Second):
		}
	}
	rc, err := h.Source.OpenFile(ctx, tenant, f)
	if err != nil {
		h.done()
		return nil, err
	}
	return &countedBody{ReadCloser: rc, done: h.done}, nil
}

func (h *hookSource) done() {
	h.mu.Lock()
	h.inFlight--
	h.mu.Unlock()
}

func (h *hookSource) peak() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.maxSeen
}

type countedBody struct {
	io.ReadCloser
	done func()
	once sync.Once
}

func (c *countedBody) Close() error {
	c.once.Do(c.done)
	return c.ReadCloser.Close()
}

// Many small files of varied sizes with large ones interleaved are read
// ahead concurrently and still land in the backup in listing order (the
// codec refuses anything else), each with its own content and properties.
func TestReadAheadKeepsOrder(t *testing.T) {
	e := newEnv(t)
	files := e.seedMixed(testTenant, 60)
	src := newHookSource(e.assets, nil)
	_, h := e.build(e.svcLogger(), func(o *backup.Options) { o.Source = src })
	job := e.request(testTenant)
	if rec := e.deliver(t.Context(), h, job, 1); rec.Code != 200 {
		t.Fatalf("worker = %d %s", rec.Code, rec.Body)
	}
	b := e.row(testTenant, job.BackupID)
	got := e.verifyBackup(b)
	e.checkMatchesSource(testTenant, got)
	if b.Files != int64(len(files)) {
		t.Fatalf("backup holds %d files, want %d", b.Files, len(files))
	}
	// Parallelism 3: three small files ahead plus the large one streaming.
	if p := src.peak(); p < 2 || p > 4 {
		t.Errorf("at most %d files read at once, want 2..4", p)
	}
}

// A small and a large file deleted after the listing but before their read
// are left out; the backup completes with the rest.
func TestReadAheadSkipsDeletedFiles(t *testing.T) {
	e := newEnv(t)
	files := e.seedMixed(testTenant, 30)
	small, large := files[12].Path, files[27].Path
	if files[27].Size < largeFile || files[12].Size > 1<<20 {
		t.Fatal("seedMixed changed: pick other files")
	}
	src := newHookSource(e.assets, func(f assets.File) {
		if f.Path == small || f.Path == large {
			must(t, e.assets.DeleteFile(context.Background(), testTenant, f.Path))
		}
	})
	_, h := e.build(e.svcLogger(), func(o *backup.Options) { o.Source = src })
	job := e.request(testTenant)
	if rec := e.deliver(t.Context(), h, job, 1); rec.Code != 200 {
		t.Fatalf("worker = %d %s", rec.Code, rec.Body)
	}
	b := e.row(testTenant, job.BackupID)
	got := e.verifyBackup(b)
	e.checkMatchesSource(testTenant, got) // the source no longer has them
	if _, ok := got.files[small]; ok || b.Files != int64(len(files)-2) {
		t.Fatalf("backup holds %d files (deleted small one present: %v), want %d", b.Files, ok, len(files)-2)
	}
	if n := len(e.logs.Records("a file was deleted while the backup ran; it is left out")); n != 2 {
		t.Errorf("%d deletion logs, want 2", n)
	}
}

// A file rewritten after the listing fails the attempt with a retry: first
// a small (read-ahead) file, then on the retry a large (streamed) one; the
// third attempt sees a stable tenant and completes with the new contents.
func TestReadAheadChangedFileRetries(t *testing.T) {
	e := newEnv(t)
	files := e.seedMixed(testTenant, 30)
	small, large := files[9], files[7]
	if large.Size < largeFile || small.Size > 1<<20 {
		t.Fatal("seedMixed changed: pick other files")
	}
	var listing atomic.Int32
	src := newHookSource(e.assets, func(f assets.File) {
		if f.Path == files[0].Path {
			listing.Add(1)
		}
		switch n := listing.Load(); {
		case n == 1 && f.Path == small.Path:
			e.putFile(testTenant, small, 0xA5)
		case n == 2 && f.Path == large.Path:
			e.putFile(testTenant, large, 0x5A)
		}
	})
	_, h := e.build(e.svcLogger(), func(o *backup.Options) { o.Source = src })
	job := e.request(testTenant)
	for dq := 1; dq <= 2; dq++ {
		if rec := e.deliver(t.Context(), h, job, dq); rec.Code == 200 {
			t.Fatalf("delivery %d acknowledged an attempt that read a changed file", dq)
		}
		if b := e.row(testTenant, job.BackupID); b.Status != catalog.StatusRunning || b.Attempts != dq {
			t.Fatalf("after delivery %d row = %+v", dq, b)
		}
	}
	if rec := e.deliver(t.Context(), h, job, 3); rec.Code != 200 {
		t.Fatalf("delivery 3 = %d %s", rec.Code, rec.Body)
	}
	b := e.row(testTenant, job.BackupID)
	got := e.verifyBackup(b)
	e.checkMatchesSource(testTenant, got) // holds the rewritten contents
	if b.Attempts != 3 || b.Files != int64(len(files)) {
		t.Fatalf("row = %+v", b)
	}
}
