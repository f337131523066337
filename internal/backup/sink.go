package backup

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/twinit/byok-backup/internal/blobstore"
)

// uploader is the envelope.Sink of one backup attempt: each sealed chunk
// becomes its own blob, uploaded by a bounded pool. PutChunk blocks while
// parallelism uploads are in flight, which is what bounds the writer's
// memory. The first failure cancels the other uploads and is returned by
// every later PutChunk and by wait.
type uploader struct {
	store   blobstore.Store
	layout  blobstore.Layout
	release func([]byte) // envelope.Writer.Release, set once the writer exists

	ctx    context.Context
	cancel context.CancelCauseFunc
	slots  chan struct{}
	wg     sync.WaitGroup

	chunks, stored atomic.Int64
	perStream      [2]atomic.Int64
}

func newUploader(ctx context.Context, store blobstore.Store, layout blobstore.Layout, parallelism int) *uploader {
	uctx, cancel := context.WithCancelCause(ctx)
	return &uploader{store: store, layout: layout, ctx: uctx, cancel: cancel, slots: make(chan struct{}, parallelism)}
}

// PutChunk implements envelope.Sink.
func (u *uploader) PutChunk(ctx context.Context, streamID uint32, index uint64, sealed []byte) error {
	if streamID > StreamFiles {
		return fmt.Errorf("backup: internal error: unexpected stream %d", streamID)
	}
	select {
	case u.slots <- struct{}{}:
	case <-u.ctx.Done():
		return u.err()
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	if err := u.err(); err != nil {
		<-u.slots
		return err
	}
	name := u.layout.Chunk(StreamName(streamID), int64(index))
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		defer func() { <-u.slots }()
		if err := u.store.PutBlob(u.ctx, name, sealed); err != nil {
			u.cancel(fmt.Errorf("failed to upload chunk %d of stream %s: %w", index, StreamName(streamID), err))
			return
		}
		u.chunks.Add(1)
		u.perStream[streamID].Add(1)
		u.stored.Add(int64(len(sealed)))
		if u.release != nil {
			u.release(sealed)
		}
	}()
	return nil
}

// err is the first upload failure, or nil.
func (u *uploader) err() error {
	if u.ctx.Err() == nil {
		return nil
	}
	return context.Cause(u.ctx)
}

// wait waits for every upload in flight and returns the first failure.
func (u *uploader) wait() error {
	u.wg.Wait()
	return u.err()
}

// stop cancels uploads in flight (after a failure elsewhere) and waits.
func (u *uploader) stop(cause error) {
	u.cancel(cause)
	u.wg.Wait()
}
