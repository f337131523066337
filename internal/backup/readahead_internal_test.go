package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twinit/byok-backup/internal/assets"
)

// memSource is an in-memory Source: files in listing order, optional
// failures, and counters the tests assert on.
type memSource struct {
	files   []assets.File
	content map[string][]byte
	listErr error // yielded after the files
	openErr map[string]error
	block   string // OpenFile of this path blocks until ctx ends

	n        int64        // the read-ahead's parallelism
	released atomic.Int64 // small files the consumer has finished with
	opened   atomic.Int64 // small files opened
	over     atomic.Int64 // opens that exceeded the buffer bound
}

func (m *memSource) Records(context.Context, string) iter.Seq2[assets.Record, error] {
	return func(func(assets.Record, error) bool) {}
}

func (m *memSource) Files(ctx context.Context, _ string) iter.Seq2[assets.File, error] {
	return func(yield func(assets.File, error) bool) {
		for _, f := range m.files {
			if !yield(f, nil) {
				return
			}
		}
		if m.listErr != nil {
			yield(assets.File{}, m.listErr)
		}
	}
}

func (m *memSource) OpenFile(ctx context.Context, _ string, f assets.File) (io.ReadCloser, error) {
	if f.Size <= readAheadMax {
		if m.opened.Add(1)-m.released.Load() > m.n {
			m.over.Add(1)
		}
	}
	if f.Path == m.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if err := m.openErr[f.Path]; err != nil {
		return nil, err
	}
	// A little simulated latency, so fetches overlap the consumer.
	time.Sleep(time.Millisecond)
	return io.NopCloser(bytes.NewReader(m.content[f.Path])), nil
}

// newMemSource makes count files of varied sizes, every tenth one larger
// than readAheadMax.
func newMemSource(count int, n int64) *memSource {
	m := &memSource{content: map[string][]byte{}, openErr: map[string]error{}, n: n}
	for i := range count {
		size := (i * 7919) % 5000
		if i%10 == 3 {
			size = readAheadMax + 1 + i
		}
		f := assets.File{Path: fmt.Sprintf("d/%04d", i), Size: int64(size)}
		b := make([]byte, size)
		for j := range b {
			b[j] = byte(i + j)
		}
		m.files = append(m.files, f)
		m.content[f.Path] = b
	}
	return m
}

// drain consumes the read-ahead like writeFiles does and returns the
// files' contents in the order they came.
func drain(t *testing.T, ctx context.Context, m *memSource, ra *readAhead) (paths []string, errs map[string]error) {
	t.Helper()
	errs = map[string]error{}
	for p := range ra.queue {
		if err := p.wait(ctx); err != nil {
			t.Fatal(err)
		}
		if p.listErr != nil {
			errs[""] = p.listErr
			continue
		}
		paths = append(paths, p.f.Path)
		var got []byte
		switch {
		case p.err != nil:
			errs[p.f.Path] = p.err
		case p.buf != nil:
			got = bytes.Clone(p.body)
		default:
			if p.f.Size <= readAheadMax {
				t.Fatalf("small file %s not read ahead", p.f.Path)
			}
			got = m.content[p.f.Path] // the consumer streams large files itself
		}
		if p.err == nil && !bytes.Equal(got, m.content[p.f.Path]) {
			t.Fatalf("file %s: %d bytes, want %d", p.f.Path, len(got), len(m.content[p.f.Path]))
		}
		if p.buf != nil {
			m.released.Add(1) // before the buffer can be reused
		}
		ra.release(p)
	}
	return paths, errs
}

// The read-ahead hands files over in listing order with their own content,
// never holds more than parallelism small files, leaves large files to the
// consumer, and ends with no goroutine left (synctest fails otherwise).
func TestReadAheadOrderAndBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 3
		m := newMemSource(200, n)
		ra := startReadAhead(t.Context(), m, "t", n)
		paths, errs := drain(t, t.Context(), m, ra)
		ra.stop()
		if len(errs) != 0 {
			t.Fatalf("errors: %v", errs)
		}
		if len(paths) != len(m.files) {
			t.Fatalf("%d files, want %d", len(paths), len(m.files))
		}
		for i, p := range paths {
			if p != m.files[i].Path {
				t.Fatalf("file %d is %s, want %s", i, p, m.files[i].Path)
			}
		}
		if !ra.complete {
			t.Error("listing not complete")
		}
		if o := m.over.Load(); o != 0 {
			t.Errorf("%d opens beyond %d buffered files", o, n)
		}
		if got, want := m.opened.Load(), int64(180); got != want {
			t.Errorf("read ahead %d small files, want %d", got, want)
		}
	})
}

// Errors stay with their file and in order: an open failure is that file's
// error, a listing failure is the last item and leaves the listing
// incomplete.
func TestReadAheadErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemSource(20, 2)
		gone := fmt.Errorf("x: %w", assets.ErrFileGone)
		m.openErr["d/0005"] = gone
		m.listErr = errors.New("listing failed (test)")
		ra := startReadAhead(t.Context(), m, "t", 2)
		paths, errs := drain(t, t.Context(), m, ra)
		ra.stop()
		if len(paths) != 20 || !errors.Is(errs["d/0005"], assets.ErrFileGone) || errs[""] != m.listErr || len(errs) != 2 {
			t.Fatalf("paths %d, errs %v", len(paths), errs)
		}
		if ra.complete {
			t.Error("a failed listing reported complete")
		}
	})
}

// A consumer that gives up mid-way (an encoder or upload error) stops the
// listing and the fetches, including one blocked in OpenFile, and waits
// for them: synctest fails the test if any goroutine is left.
func TestReadAheadStopMidway(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemSource(100, 4)
		m.block = "d/0012"
		ra := startReadAhead(t.Context(), m, "t", 4)
		taken := 0
		for p := range ra.queue {
			if err := p.wait(t.Context()); err != nil || p.err != nil {
				t.Fatalf("file %s: %v %v", p.f.Path, err, p.err)
			}
			ra.release(p)
			if taken++; taken == 10 {
				break
			}
		}
		synctest.Wait() // the read-ahead is now blocked on full buffers and d/0012
		ra.stop()
		if ra.complete {
			t.Error("stopped listing reported complete")
		}
	})
}

// A cancelled parent context (the other stream failed) ends the wait for a
// file that never arrives, and the queue closes without the listing being
// complete, so writeFiles can't mistake it for the end of the files.
func TestReadAheadParentCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemSource(30, 2)
		m.block = "d/0000"
		ctx, cancel := context.WithCancelCause(t.Context())
		ra := startReadAhead(ctx, m, "t", 2)
		var wg sync.WaitGroup
		wg.Go(func() {
			synctest.Wait()
			cancel(errors.New("other stream failed (test)"))
		})
		p := <-ra.queue
		// Either the wait sees the cause, or the blocked fetch ended first
		// with the cancellation as its error: never a file with no error.
		if err := p.wait(ctx); err == nil && p.err == nil {
			t.Fatal("a cancelled fetch came back without an error")
		}
		for range ra.queue {
		}
		ra.stop()
		wg.Wait()
		if ra.complete {
			t.Error("cancelled listing reported complete")
		}
	})
}

// TestReadAheadNegativeListedSize: a listing that reports a negative
// Content-Length (broken or hostile storage) must not size a buffer from
// it (a slice of negative length panicked in a goroutine and killed the
// process): the file is handed on unbuffered, for the encoder to refuse.
func TestReadAheadNegativeListedSize(t *testing.T) {
	m := &memSource{content: map[string][]byte{"d/x": []byte("abc")}, openErr: map[string]error{}, n: 2}
	m.files = []assets.File{{Path: "d/x", Size: -5}}
	ra := startReadAhead(t.Context(), m, "t", 2)
	defer ra.stop()
	got := 0
	for p := range ra.queue {
		if err := p.wait(t.Context()); err != nil {
			t.Fatal(err)
		}
		if p.body != nil || p.buf != nil || p.err != nil || p.listErr != nil {
			t.Fatalf("file listed with size -5 was read ahead: body %q, err %v", p.body, p.err)
		}
		got++
	}
	if got != 1 {
		t.Fatalf("%d files came through, want 1", got)
	}
}
