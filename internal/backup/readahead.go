package backup

import (
	"context"
	"errors"
	"io"
	"iter"
	"sync"
	"sync/atomic"

	"github.com/twinit/byok-backup/internal/assets"
)

// readAheadMax is the largest file the read-ahead buffers whole. Larger
// files are opened only when the encoder reaches them and streamed, so
// memory never holds a large file; the read-ahead holds at most
// parallelism buffers of readAheadMax+1 bytes.
const readAheadMax = 1 << 20

// pending is one listed file as the read-ahead hands it to the encoder, in
// listing order. Exactly one of the three shapes applies once done is
// closed: listErr or err set (listing or open/read failure), body set (a small file read
// whole; buf is its buffer to give back), or neither (a large file the
// consumer opens and streams itself).
type pending struct {
	f    assets.File
	done chan struct{} // closed when the fields below are final
	body []byte
	buf  *[]byte // the read-ahead buffer holding body, nil for large files
	err  error   // opening or reading the file failed
	// listErr is a listing failure; it is the last item queued.
	listErr error
}

// readAhead lists the tenant's files and reads the small ones concurrently,
// at most n at a time, while the consumer takes them strictly in listing
// order (the assets codec needs ascending paths).
type readAhead struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	queue  chan *pending
	free   chan *[]byte // buffer tokens: bounds both fetches and memory
	// complete is set, before queue closes, when the listing ended on its
	// own rather than by cancellation: only then is the queue the whole
	// listing.
	complete bool
	// listedBytes sums the listed files' sizes; listedAll is set once the
	// listing ended on its own, when listedBytes is the files' total (for
	// the backup's progress; read by the heartbeat).
	listedBytes atomic.Int64
	listedAll   atomic.Bool
}

// startReadAhead starts listing and fetching; the caller ranges over
// ra.queue until it is closed or it gives up, then calls ra.stop.
func startReadAhead(ctx context.Context, src Source, tenant string, n int) *readAhead {
	ctx, cancel := context.WithCancel(ctx)
	n = max(n, 1)
	ra := &readAhead{cancel: cancel, queue: make(chan *pending, n), free: make(chan *[]byte, n)}
	for range n {
		ra.free <- new([]byte) // grown on first use, up to readAheadMax+1
	}
	open := func(ctx context.Context, f assets.File) (io.ReadCloser, error) {
		return src.OpenFile(ctx, tenant, f)
	}
	ra.wg.Add(1)
	go ra.list(ctx, src.Files(ctx, tenant), open)
	return ra
}

// opener opens one listed file of the tenant.
type opener func(ctx context.Context, f assets.File) (io.ReadCloser, error)

// list feeds the queue in listing order and starts a fetch for each small
// file once a buffer is free.
func (ra *readAhead) list(ctx context.Context, files iter.Seq2[assets.File, error], open opener) {
	defer ra.wg.Done()
	defer close(ra.queue)
	for f, err := range files {
		p := &pending{f: f, done: make(chan struct{})}
		if err == nil && f.Size > 0 {
			ra.listedBytes.Add(f.Size)
		}
		switch {
		case err != nil:
			p.listErr = err
			close(p.done)
		case f.Size > readAheadMax, f.Size < 0:
			// Too large to buffer, or a size no real blob has (a broken
			// listing): streamed, so the encoder refuses it as a file.
			close(p.done)
		default:
			var buf *[]byte
			select {
			case buf = <-ra.free:
			case <-ctx.Done():
				return
			}
			p.buf = buf
			ra.wg.Add(1)
			go ra.fetch(ctx, p, open)
		}
		select {
		case ra.queue <- p:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
	ra.complete = true
	ra.listedAll.Store(true)
}

// fetch reads one small file whole into its buffer. It reads one byte more
// than listed so the encoder still sees a file that grew (and fails it with
// ErrFileChanged) or shrank (ErrShortContent), exactly as when streaming.
func (ra *readAhead) fetch(ctx context.Context, p *pending, open opener) {
	defer ra.wg.Done()
	defer close(p.done)
	rc, err := open(ctx, p.f)
	if err != nil {
		p.err = err
		return
	}
	defer rc.Close()
	want := int(p.f.Size) + 1
	b := *p.buf
	if cap(b) < want {
		// Doubling keeps varied sizes from reallocating every time.
		b = make([]byte, 0, min(max(want, 2*cap(b)), readAheadMax+1))
	}
	b = b[:want]
	m, err := io.ReadFull(rc, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		p.err = err
		*p.buf = b[:0]
		return
	}
	*p.buf = b[:0]
	p.body = b[:m]
}

// release gives a consumed file's buffer back to the read-ahead.
func (ra *readAhead) release(p *pending) {
	if p.buf != nil {
		p.body = nil
		ra.free <- p.buf // never blocks: one token per buffer
		p.buf = nil
	}
}

// wait blocks until p is ready or ctx ends.
func (p *pending) wait(ctx context.Context) error {
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// stop cancels the listing and the fetches still running and waits for
// them, so no goroutine or open response body outlives the files stream.
func (ra *readAhead) stop() {
	ra.cancel()
	ra.wg.Wait()
}
