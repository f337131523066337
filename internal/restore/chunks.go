package restore

import (
	"context"
	"fmt"
	"io"

	"github.com/twinit/byok-backup/internal/blobstore"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/envelope"
)

// layoutOf returns the blob layout of the committed attempt of b, from its
// recorded manifest blob name, which must sit directly under the backup's
// prefix or one attempt directory below it.
func layoutOf(b *catalog.Backup) (blobstore.Layout, error) {
	return blobstore.ManifestLayout(b.Tenant, b.BackupID, b.ManifestBlob, b.Rewraps)
}

// fetchFunc returns the sealed chunk index of stream id.
type fetchFunc func(ctx context.Context, id uint32, index uint64) ([]byte, error)

// blobFetch reads chunks from the backups container into buffers from
// pool (the plainStream gives them back once read), so memory stays flat
// however many chunks a backup has. A chunk that does not exist in a
// completed backup was removed: an integrity failure.
func blobFetch(store blobstore.Store, l blobstore.Layout, pool *chunkPool) fetchFunc {
	return func(ctx context.Context, id uint32, index uint64) ([]byte, error) {
		buf := pool.get()
		// No chunk is larger than a pool buffer (chunk size + tag): the
		// store refuses a bigger blob before allocating for it.
		b, err := blobstore.GetInto(ctx, store, l.Chunk(blobstore.StreamName(id), int64(index)), buf, int64(pool.size))
		if err != nil {
			pool.put(buf)
		}
		if blobstore.IsNotExist(err) {
			return nil, errIntegrity(fmt.Errorf("chunk %d of stream %s is missing: %w", index, blobstore.StreamName(id), err))
		}
		if blobstore.IsTooLarge(err) {
			return nil, errIntegrity(fmt.Errorf("chunk %d of stream %s is larger than the manifest allows: %w", index, blobstore.StreamName(id), err))
		}
		if err != nil {
			return nil, fmt.Errorf("failed to read chunk %d of stream %s: %w", index, blobstore.StreamName(id), err)
		}
		return b, nil
	}
}

// chunkPool recycles buffers of one sealed chunk's size: a free list of
// up to keep buffers. Not a sync.Pool, which drops what it holds at every
// other GC: with GOGC at 25 that was every few chunks, and each dropped
// 8 MiB buffer was replaced by a new one while the old one's pages stayed
// with the process until the runtime's scavenger returned them (a third of
// the restore's peak RSS at issue 13's sizes).
type chunkPool struct {
	size int
	free chan []byte
}

func newChunkPool(size, keep int) *chunkPool {
	return &chunkPool{size: size, free: make(chan []byte, keep)}
}

func (c *chunkPool) get() []byte {
	select {
	case b := <-c.free:
		return b[:0]
	default:
		return make([]byte, 0, c.size)
	}
}

// put takes back a buffer get returned (or a slice of it, such as the
// plaintext opened in place); others, and any beyond keep, are left to the
// GC.
func (c *chunkPool) put(b []byte) {
	if cap(b) != c.size {
		return
	}
	select {
	case c.free <- b[:0]:
	default:
	}
}

// chunkResult is one fetched and opened chunk. token is set when it holds
// one of its stream's budget tokens (every result but one made after a
// cancel).
type chunkResult struct {
	plain []byte
	err   error
	token bool
}

// budget bounds the chunks in flight (fetched, being fetched, or being
// read) across every plainStream that shares it: the two streams of the
// verify pass share one, so a backup whose records stream is as long as its
// files stream (200,000 records at issue 13's 10 GiB size) holds no more
// chunk buffers at once than one holding a handful of records. A stream
// takes a token for chunk i only after chunk i-1 got one and gives it back
// once read, so whatever the streams' readers do, the oldest chunk of each
// stream always gets a token first: sharing can't deadlock with at least
// one token per stream plus one.
type budget chan struct{}

func newBudget(n int) budget { return make(budget, n) }

// plainStream is an io.Reader of one stream's plaintext: it fetches and
// authenticates chunks ahead, in parallel, as many as its budget allows,
// and yields them in order. onSealed, when set, sees each sealed chunk
// before it is opened (the spool).
type plainStream struct {
	cancel context.CancelFunc
	next   chan chan chunkResult
	cur    []byte
	buf    []byte // the chunk cur points into, for release
	token  bool   // cur's chunk holds a budget token
	budget budget
	err    error
	// release, when set, takes back a chunk buffer fetch returned (the
	// plaintext is opened in place in it) once Read has copied it all out.
	release func([]byte)
}

func newPlainStream(ctx context.Context, r *envelope.Reader, info envelope.StreamInfo, fetch fetchFunc,
	b budget, onSealed func(id uint32, index uint64, sealed []byte) error) *plainStream {
	ctx, cancel := context.WithCancel(ctx)
	ps := &plainStream{cancel: cancel, next: make(chan chan chunkResult, cap(b)), budget: b}
	go func() {
		defer close(ps.next)
		for i := range info.Chunks {
			ch := make(chan chunkResult, 1)
			select {
			case ps.next <- ch:
			case <-ctx.Done():
				return
			}
			// The token is taken after ch is queued, in chunk order: see budget.
			select {
			case b <- struct{}{}:
			case <-ctx.Done():
				ch <- chunkResult{err: ctx.Err()}
				return
			}
			go func() {
				plain, forged, err := fetchOpen(ctx, r, info.ID, i, fetch, onSealed)
				if forged {
					// The store doesn't check transport checksums of sealed
					// chunks (blobstore.IntoGetter), so a body damaged in
					// transit fails authentication: read it once more
					// before calling the chunk tampered with.
					plain, _, err = fetchOpen(ctx, r, info.ID, i, fetch, onSealed)
				}
				ch <- chunkResult{plain, err, true}
			}()
		}
	}()
	return ps
}

// fetchOpen fetches, spools (onSealed) and opens chunk i of stream id.
// forged is true when the chunk was read but failed authentication.
func fetchOpen(ctx context.Context, r *envelope.Reader, id uint32, i uint64, fetch fetchFunc,
	onSealed func(uint32, uint64, []byte) error) (plain []byte, forged bool, err error) {
	sealed, err := fetch(ctx, id, i)
	if err == nil && onSealed != nil {
		err = onSealed(id, i, sealed)
	}
	if err != nil {
		return nil, false, err
	}
	if plain, err = r.OpenChunk(id, i, sealed); err != nil {
		return nil, true, err
	}
	return plain, false, nil
}

// done gives back the current chunk's buffer and token.
func (ps *plainStream) done() {
	if ps.release != nil && ps.buf != nil {
		ps.release(ps.buf)
	}
	if ps.token {
		<-ps.budget
	}
	ps.cur, ps.buf, ps.token = nil, nil, false
}

// Read implements io.Reader. It returns io.EOF after the stream's last
// chunk, which the envelope authenticated as final; errors are sticky.
func (ps *plainStream) Read(p []byte) (int, error) {
	for len(ps.cur) == 0 {
		if ps.err != nil {
			return 0, ps.err
		}
		ch, ok := <-ps.next
		if !ok {
			ps.err = io.EOF
			continue
		}
		res := <-ch
		ps.cur, ps.buf, ps.token = res.plain, res.plain, res.token
		if res.err != nil {
			ps.err = res.err
			ps.cancel()
		}
		if len(ps.cur) == 0 {
			ps.done()
		}
	}
	n := copy(p, ps.cur)
	ps.cur = ps.cur[n:]
	if len(ps.cur) == 0 {
		ps.done()
	}
	return n, nil
}

// Close stops the prefetch, waits for chunks in flight and gives back
// every buffer and token the stream holds.
func (ps *plainStream) Close() {
	ps.cancel()
	ps.done()
	for ch := range ps.next {
		res := <-ch
		ps.cur, ps.buf, ps.token = res.plain, res.plain, res.token
		ps.done()
	}
}
