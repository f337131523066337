package backup_test

import (
	"context"
	"encoding/json"
	"io"
	"iter"
	"net/http"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/backup"
	"github.com/twinit/byok-backup/internal/devstack/seed"
)

// steppedSource holds a backup at two points the test releases: first
// after heldAt records and halfway through the first large file (streamed,
// not read ahead; the listing held after it), then after every record and
// file (the records stream not ended, so the backup cannot commit).
type steppedSource struct {
	backup.Source
	heldAt, filesHeldAt int
	first, last         chan struct{}
}

func (s steppedSource) Records(ctx context.Context, tenant string) iter.Seq2[assets.Record, error] {
	return func(yield func(assets.Record, error) bool) {
		n := 0
		for r, err := range s.Source.Records(ctx, tenant) {
			if n == s.heldAt && !wait(ctx, s.first, yield) {
				return
			}
			n++
			if !yield(r, err) {
				return
			}
		}
		wait(ctx, s.last, yield)
	}
}

func (s steppedSource) Files(ctx context.Context, tenant string) iter.Seq2[assets.File, error] {
	return func(yield func(assets.File, error) bool) {
		n := 0
		for f, err := range s.Source.Files(ctx, tenant) {
			if n == s.filesHeldAt && !wait(ctx, s.first, yield) {
				return
			}
			n++
			if !yield(f, err) {
				return
			}
		}
	}
}

func (s steppedSource) OpenFile(ctx context.Context, tenant string, f assets.File) (io.ReadCloser, error) {
	rc, err := s.Source.OpenFile(ctx, tenant, f)
	if err != nil || f.Size <= 1<<20 {
		return rc, err
	}
	return &heldReader{ReadCloser: rc, ctx: ctx, at: f.Size / 2, gate: s.first}, nil
}

// heldReader stops after at bytes until gate closes.
type heldReader struct {
	io.ReadCloser
	ctx  context.Context
	at   int64
	n    int64
	gate chan struct{}
}

func (h *heldReader) Read(b []byte) (int, error) {
	if h.n >= h.at {
		select {
		case <-h.gate:
		case <-h.ctx.Done():
			return 0, h.ctx.Err()
		}
	} else if rest := h.at - h.n; int64(len(b)) > rest {
		b = b[:rest]
	}
	n, err := h.ReadCloser.Read(b)
	h.n += int64(n)
	return n, err
}

func wait[T any](ctx context.Context, gate chan struct{}, yield func(T, error) bool) bool {
	select {
	case <-gate:
		return true
	case <-ctx.Done():
		var zero T
		yield(zero, ctx.Err())
		return false
	}
}

type progressView struct {
	Records    int64  `json:"records"`
	Files      int64  `json:"files"`
	Bytes      int64  `json:"bytes"`
	TotalBytes *int64 `json:"totalBytes"`
}

type backupProgressView struct {
	Status   string       `json:"status"`
	Records  int64        `json:"records"`
	Files    int64        `json:"files"`
	Bytes    int64        `json:"bytes"`
	Progress progressView `json:"progress"`
}

// TestRunningBackupReportsProgress (issue 14 point 6): GET of a running
// backup shows what it has read so far, growing as it runs, with the
// files' total once the listing has ended; the completed backup shows its
// final counts. The progress rides on the heartbeat (no write of its own).
func TestRunningBackupReportsProgress(t *testing.T) {
	src := steppedSource{heldAt: 10, first: make(chan struct{}), last: make(chan struct{})}
	e := newEnv(t, func(o *backup.Options) {
		src.Source = o.Source
		o.Source = &src // filesHeldAt is set after seeding
		o.HeartbeatEvery = 20 * time.Millisecond
	})
	// Sizes cycle 0, small, FileSize/3, FileSize: the fourth file streams.
	seeded, err := seed.Tenant(t.Context(), e.assets, testTenant, seed.Options{Records: 40, Files: 6, FileSize: 2 << 20, Seed: 7})
	must(t, err)
	var sizes []int64
	for f, err := range e.assets.Files(t.Context(), testTenant) {
		must(t, err)
		sizes = append(sizes, f.Size)
	}
	big := 0
	for sizes[big] <= 1<<20 {
		big++
	}
	var before int64 // the files before the large one
	for _, n := range sizes[:big] {
		before += n
	}
	src.filesHeldAt = big + 1
	job := e.request(testTenant)
	reader, err := e.issuer.Token(testTenant, "byok.read")
	must(t, err)
	get := func() backupProgressView {
		t.Helper()
		rec := e.http(http.MethodGet, "/api/tenants/"+testTenant+"/backups/"+job.BackupID, reader, "")
		var v backupProgressView
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &v) != nil {
			t.Fatalf("GET backup = %d %s", rec.Code, rec.Body)
		}
		return v
	}
	// poll waits until the persisted progress satisfies ok; the bound only
	// turns "never" into a failure, it times nothing.
	never, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	poll := func(what string, ok func(backupProgressView) bool) backupProgressView {
		t.Helper()
		for {
			v := get()
			if ok(v) {
				return v
			}
			if v.Status != "running" && v.Status != "queued" {
				t.Fatalf("%s: backup ended as %s before: %+v", what, v.Status, v)
			}
			select {
			case <-never.Done():
				t.Fatalf("%s: never seen; last %+v", what, v)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}

	done := make(chan int, 1)
	go func() { done <- e.deliver(context.WithoutCancel(t.Context()), e.handler, job, 1).Code }()
	defer func() {
		select {
		case <-src.first:
		default:
			close(src.first)
		}
		select {
		case <-src.last:
		default:
			close(src.last)
		}
		<-done
	}()

	// Halfway through the large file: its bytes read so far count.
	half := before + sizes[big]/2
	v := poll("first hold", func(v backupProgressView) bool {
		return v.Progress.Records == 10 && v.Progress.Files == int64(big) && v.Progress.Bytes >= half
	})
	if v.Status != "running" || v.Progress.Bytes >= before+sizes[big] || v.Progress.TotalBytes != nil {
		t.Fatalf("mid-run progress: %+v (seeded %+v); want running, %d to %d bytes, total unknown", v, seeded, half, before+sizes[big])
	}
	if v.Records != 0 || v.Files != 0 || v.Bytes != 0 {
		t.Fatalf("a running backup's final counts are set: %+v", v)
	}
	close(src.first)

	v = poll("second hold", func(v backupProgressView) bool {
		return v.Progress.Records == seeded.Records && v.Progress.Files == seeded.Files && v.Progress.TotalBytes != nil
	})
	if v.Status != "running" || v.Progress.Bytes != seeded.Bytes || *v.Progress.TotalBytes != seeded.Bytes {
		t.Fatalf("progress with everything read: %+v, want bytes and totalBytes %d", v, seeded.Bytes)
	}
	close(src.last)
	if code := <-done; code != http.StatusOK {
		t.Fatalf("worker = %d", code)
	}
	done <- http.StatusOK // for the deferred wait

	v = get()
	want := progressView{Records: seeded.Records, Files: seeded.Files, Bytes: seeded.Bytes}
	total := v.Progress.TotalBytes
	v.Progress.TotalBytes = nil
	if v.Status != "completed" || v.Progress != want || total == nil || *total != seeded.Bytes ||
		v.Records != seeded.Records || v.Files != seeded.Files || v.Bytes != seeded.Bytes {
		t.Fatalf("completed backup: %+v (total %v), want final counts %+v", v, total, seeded)
	}
}
