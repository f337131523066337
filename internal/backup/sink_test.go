package backup

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/blobstore"
	"github.com/twinit/byok-backup/internal/blobstore/mem"
	"github.com/twinit/byok-backup/internal/catalog"
)

// countingStore records how many uploads run at once.
type countingStore struct {
	blobstore.Store
	inFlight, peak atomic.Int32
	fail           func(name string) error
}

func (c *countingStore) PutBlob(ctx context.Context, name string, data []byte) error {
	n := c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
	}
	time.Sleep(2 * time.Millisecond)
	if c.fail != nil {
		if err := c.fail(name); err != nil {
			return err
		}
	}
	return c.Store.PutBlob(ctx, name, data)
}

// The pool never runs more than parallelism uploads (the memory bound),
// names chunks by stream and index, and counts what it stored.
func TestUploaderBoundsParallelism(t *testing.T) {
	for _, par := range []int{1, 3} {
		t.Run(fmt.Sprintf("parallelism=%d", par), func(t *testing.T) {
			cs := &countingStore{Store: mem.New()}
			l, err := blobstore.NewLayout("acme", catalog.NewID(time.Now()), "a1")
			if err != nil {
				t.Fatal(err)
			}
			u := newUploader(t.Context(), cs, l, par)
			var released atomic.Int32
			u.release = func([]byte) { released.Add(1) }
			for i := range 20 {
				if err := u.PutChunk(t.Context(), uint32(i%2), uint64(i/2), make([]byte, 10)); err != nil {
					t.Fatal(err)
				}
			}
			if err := u.wait(); err != nil {
				t.Fatal(err)
			}
			if p := cs.peak.Load(); p > int32(par) || par > 1 && p < 2 {
				t.Errorf("peak in flight %d with parallelism %d", p, par)
			}
			if u.chunks.Load() != 20 || u.stored.Load() != 200 || u.perStream[0].Load() != 10 || released.Load() != 20 {
				t.Errorf("chunks %d stored %d per stream %d released %d", u.chunks.Load(), u.stored.Load(), u.perStream[0].Load(), released.Load())
			}
			if _, err := cs.GetBlob(t.Context(), l.Chunk("files", 9)); err != nil {
				t.Errorf("chunk 9 of files: %v", err)
			}
		})
	}
}

// The first upload failure stops the pool: later PutChunk calls return it.
func TestUploaderStopsAtFirstFailure(t *testing.T) {
	boom := errors.New("boom")
	cs := &countingStore{Store: mem.New(), fail: func(name string) error {
		if name[len(name)-1] == '3' {
			return boom
		}
		return nil
	}}
	l, _ := blobstore.NewLayout("acme", catalog.NewID(time.Now()), "a1")
	u := newUploader(t.Context(), cs, l, 2)
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		err = u.PutChunk(t.Context(), StreamRecords, uint64(i), []byte("x"))
	}
	if !errors.Is(err, boom) {
		t.Fatalf("PutChunk after a failure = %v", err)
	}
	if err := u.wait(); !errors.Is(err, boom) {
		t.Fatalf("wait = %v", err)
	}
}
