package restore

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/twinit/byok-backup/internal/envelope"
)

// spool keeps the verified ciphertext of one backup in a temporary file
// between the verify pass and the write pass, so the backup is downloaded
// once and the write pass reads exactly the bytes the verify pass
// authenticated (no second download an attacker could swap in). It holds
// sealed chunks only, never plaintext, and the write pass authenticates
// each chunk again. Chunk i of stream s sits at a fixed offset computed from
// the authenticated manifest, so chunks are written in any order.
type spool struct {
	f    *os.File
	base map[uint32]int64 // file offset of each stream's chunk 0
	cs   int64            // sealed size of a full chunk
	// bufs recycles the chunk buffers of the read path: the write pass
	// holds about 2 streams × (Parallelism + 2) chunks at once, so reusing
	// them keeps its memory flat however large the backup is, instead of
	// one fresh chunk-sized allocation per chunk for the GC to catch up with.
	bufs sync.Pool
}

// newSpool creates the spool file in dir and unlinks its name at once, so
// it vanishes with the process even after a crash.
func newSpool(dir string, m *envelope.Manifest) (*spool, error) {
	f, err := os.CreateTemp(dir, "restore-spool-*")
	if err != nil {
		return nil, fmt.Errorf("failed to create the restore spool: %w", err)
	}
	_ = os.Remove(f.Name())
	sp := &spool{f: f, base: map[uint32]int64{}, cs: int64(m.ChunkSize) + 16}
	sp.bufs.New = func() any { b := make([]byte, sp.cs); return &b }
	var off int64
	for _, s := range m.Streams {
		sp.base[s.ID] = off
		off += int64(s.CiphertextSize)
	}
	return sp, nil
}

func (sp *spool) offset(id uint32, index uint64) int64 { return sp.base[id] + int64(index)*sp.cs }

// put stores a sealed chunk (before it is opened in place).
func (sp *spool) put(id uint32, index uint64, sealed []byte) error {
	if _, err := sp.f.WriteAt(sealed, sp.offset(id, index)); err != nil {
		return fmt.Errorf("failed to spool chunk %d of stream %d: %w", index, id, err)
	}
	return nil
}

// fetch reads a spooled chunk back; its length comes from the manifest.
func (sp *spool) fetch(m *envelope.Manifest) fetchFunc {
	return func(_ context.Context, id uint32, index uint64) ([]byte, error) {
		s, _ := m.Stream(id)
		n := sp.cs
		if index+1 == s.Chunks {
			n = int64(s.CiphertextSize) - int64(index)*sp.cs
		}
		b := (*sp.bufs.Get().(*[]byte))[:n]
		if _, err := sp.f.ReadAt(b, sp.offset(id, index)); err != nil {
			sp.release(b)
			return nil, fmt.Errorf("failed to read chunk %d of stream %d from the spool: %w", index, id, err)
		}
		return b, nil
	}
}

// release returns a buffer fetch handed out (or the plaintext opened in
// place in it) once nothing refers to it any more.
func (sp *spool) release(b []byte) {
	if int64(cap(b)) != sp.cs {
		return
	}
	b = b[:cap(b)]
	sp.bufs.Put(&b)
}

func (sp *spool) close() { _ = sp.f.Close() }
