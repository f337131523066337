package mem_test

import (
	"runtime"
	"testing"

	"github.com/twinit/byok-backup/internal/blobstore"
	"github.com/twinit/byok-backup/internal/blobstore/mem"
	"github.com/twinit/byok-backup/internal/blobstore/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) blobstore.Store { return mem.New() })
}

// TestOversizedBlobIsRefusedWithoutCopying: a blob over the reader's limit
// is refused before the store copies it, so the reader's heap does not grow
// by the blob's size (measured, not timed).
func TestOversizedBlobIsRefusedWithoutCopying(t *testing.T) {
	const limit = 64<<20 + 16 // the largest sealed chunk the format allows
	s := mem.New()
	if err := s.PutBlob(t.Context(), "c", make([]byte, limit+1)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 1024)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := blobstore.GetInto(t.Context(), s, "c", buf, limit)
	runtime.ReadMemStats(&after)
	if !blobstore.IsTooLarge(err) {
		t.Fatalf("GetInto of limit+1 bytes: %v; want ErrTooLarge", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("refusing an oversized blob allocated %d bytes", grew)
	}
}
