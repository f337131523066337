package restore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/twinit/byok-backup/internal/blobstore"
	"io"
	"os"

	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/envelope"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/job"
)

// spool keeps, between the verify pass and the write pass, everything the
// write pass needs besides the staged blocks: the verified ciphertext of
// the records stream and the header of every staged file. The write pass
// reads exactly what the verify pass authenticated (no second download an
// attacker could swap or delete chunks in), and memory stays flat however
// many records and files the backup holds.
//
// Records: sealed chunks only, never plaintext, authenticated again when
// read back. Chunk i sits at a fixed offset computed from the authenticated
// manifest, so chunks are written in any order.
//
// File headers (paths, properties, metadata: tenant data) are sealed too,
// with a random key that lives only in this process, one frame per file in
// staging order; reading them back authenticates each frame and its place.
//
// Both files are unlinked at once and share one size limit, checked before
// each write: a restore whose spool would outgrow it fails before the
// target changes ([errSpoolFull]).
type spool struct {
	f     *os.File // records chunks
	cs    int64    // sealed size of a full chunk
	total int64    // the limit, for the message
	limit int64    // bytes the header file may take
	// bufs recycles the chunk buffers of the read path: the write pass
	// holds a budget of chunks at once, so reusing them keeps its memory
	// flat however large the backup is.
	bufs *chunkPool

	hf    *os.File // file headers
	hw    *bufio.Writer
	hsize int64
	aead  cipher.AEAD
	n     uint64 // headers written
	// inline is the content of small files kept with their headers so far;
	// it has a budget of its own (the limit again), so keeping content
	// never refuses a restore whose headers fit.
	inline int64
	frame  []byte
}

// newSpool creates the spool files in dir and unlinks their names at once,
// so they vanish with the process even after a crash. It fails with
// [errSpoolFull] if the records stream alone is larger than limit.
func newSpool(dir string, m *envelope.Manifest, limit int64, bufs *chunkPool) (*spool, error) {
	info, _ := m.Stream(blobstore.StreamRecords)
	if int64(info.CiphertextSize) > limit {
		return nil, errSpoolFull(limit)
	}
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, fmt.Errorf("failed to draw the restore spool's key: %w", err)
	}
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	sp := &spool{cs: int64(m.ChunkSize) + 16, total: limit, limit: limit - int64(info.CiphertextSize), aead: aead, bufs: bufs}
	if sp.f, err = tempFile(dir); err != nil {
		return nil, err
	}
	if sp.hf, err = tempFile(dir); err != nil {
		_ = sp.f.Close()
		return nil, err
	}
	sp.hw = bufio.NewWriterSize(sp.hf, 64<<10)
	return sp, nil
}

func tempFile(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, "restore-spool-*")
	if err != nil {
		return nil, fmt.Errorf("failed to create the restore spool: %w", err)
	}
	_ = os.Remove(f.Name())
	return f, nil
}

// errSpoolFull is the failure of a restore whose records and file headers
// don't fit the spool: refused before anything in the target changes.
func errSpoolFull(limit int64) error {
	return job.Permanent(errcode.New(errcode.Conflict,
		"The backup's records and file list need more than the %d MiB restore spool the service allows (RESTORE_SPOOL_LIMIT_MB), so it was not restored. Nothing was written to the target tenant. Raise the limit or restore from a smaller backup.", limit>>20))
}

func (sp *spool) offset(index uint64) int64 { return int64(index) * sp.cs }

// put stores a sealed records chunk (before it is opened in place).
func (sp *spool) put(id uint32, index uint64, sealed []byte) error {
	if id != blobstore.StreamRecords {
		return fmt.Errorf("chunk %d of stream %d can't be spooled", index, id)
	}
	if _, err := sp.f.WriteAt(sealed, sp.offset(index)); err != nil {
		return fmt.Errorf("failed to spool chunk %d of stream %d: %w", index, id, err)
	}
	return nil
}

// fetch reads a spooled records chunk back; its length comes from the manifest.
func (sp *spool) fetch(m *envelope.Manifest) fetchFunc {
	return func(_ context.Context, id uint32, index uint64) ([]byte, error) {
		s, _ := m.Stream(id)
		if id != blobstore.StreamRecords || index >= s.Chunks {
			return nil, fmt.Errorf("chunk %d of stream %d is not spooled", index, id)
		}
		n := sp.cs
		if index+1 == s.Chunks {
			n = int64(s.CiphertextSize) - int64(index)*sp.cs
		}
		b := sp.bufs.get()[:n]
		if _, err := sp.f.ReadAt(b, sp.offset(index)); err != nil {
			sp.bufs.put(b)
			return nil, fmt.Errorf("failed to read chunk %d of stream %d from the spool: %w", index, id, err)
		}
		return b, nil
	}
}

// spooledFile is a staged file's header as the header file keeps it.
type spooledFile struct {
	F      assets.File `json:"f"`
	Blocks uint32      `json:"b"`
	// Inline is the length of the content sealed after the header (a small
	// file written in one request after verification), 0 for staged files.
	Inline int64 `json:"i,omitempty"`
}

// keepInline reserves room for n bytes of small-file content; false when
// the budget is spent (the file is staged instead).
func (sp *spool) keepInline(n int64) bool {
	if sp.inline+n > sp.total {
		return false
	}
	sp.inline += n
	return true
}

func (sp *spool) nonce(i uint64) []byte {
	nonce := make([]byte, sp.aead.NonceSize())
	binary.BigEndian.PutUint64(nonce[len(nonce)-8:], i)
	return nonce
}

// putFile appends a staged file's header. Headers must be put in staging
// order, from one goroutine.
func (sp *spool) putFile(sf stagedFile) error {
	plain, err := json.Marshal(spooledFile{F: sf.f, Blocks: sf.blocks, Inline: int64(len(sf.data))})
	if err != nil {
		return err
	}
	// One reused buffer for header + content + tag: small files would
	// otherwise leave their size in garbage each.
	sp.frame = append(append(sp.frame[:0], plain...), sf.data...)
	sealed := sp.aead.Seal(sp.frame[:0], sp.nonce(sp.n), sp.frame, nil)
	sp.frame = sealed
	if sp.hsize += int64(4 + len(sealed)); sp.hsize-sp.inline > sp.limit {
		return errSpoolFull(sp.total)
	}
	var l [4]byte
	binary.BigEndian.PutUint32(l[:], uint32(len(sealed)))
	if _, err := sp.hw.Write(l[:]); err != nil {
		return fmt.Errorf("failed to spool a file header: %w", err)
	}
	if _, err := sp.hw.Write(sealed); err != nil {
		return fmt.Errorf("failed to spool a file header: %w", err)
	}
	sp.n++
	return nil
}

// files returns a reader of the file headers put so far, in order; each
// call starts from the first.
func (sp *spool) files() (*headerReader, error) {
	if err := sp.hw.Flush(); err != nil {
		return nil, fmt.Errorf("failed to spool the file headers: %w", err)
	}
	return &headerReader{sp: sp, r: bufio.NewReaderSize(io.NewSectionReader(sp.hf, 0, sp.hsize), 64<<10)}, nil
}

// headerReader yields the spooled file headers in staging order.
type headerReader struct {
	sp  *spool
	r   *bufio.Reader
	i   uint64
	buf []byte
}

var errSpoolCorrupt = errors.New("the restore spool was altered on disk")

// next returns the next header, or io.EOF after the last one put.
func (h *headerReader) next() (stagedFile, error) {
	if h.i == h.sp.n {
		return stagedFile{}, io.EOF
	}
	var l [4]byte
	if _, err := io.ReadFull(h.r, l[:]); err != nil {
		return stagedFile{}, fmt.Errorf("failed to read a file header from the spool: %w", err)
	}
	n := binary.BigEndian.Uint32(l[:])
	if int64(n) > 8*assets.MaxFileHeaderSize+inlineMax { // JSON escapes at most 6 bytes per byte

		return stagedFile{}, errSpoolCorrupt
	}
	if cap(h.buf) < int(n) {
		h.buf = make([]byte, n)
	}
	h.buf = h.buf[:n]
	if _, err := io.ReadFull(h.r, h.buf); err != nil {
		return stagedFile{}, fmt.Errorf("failed to read a file header from the spool: %w", err)
	}
	plain, err := h.sp.aead.Open(h.buf[:0], h.sp.nonce(h.i), h.buf, nil)
	if err != nil {
		return stagedFile{}, errSpoolCorrupt
	}
	// The header's JSON ends at the first complete value; the content
	// follows it.
	d := json.NewDecoder(bytes.NewReader(plain))
	var s spooledFile
	if err := d.Decode(&s); err != nil {
		return stagedFile{}, fmt.Errorf("%w: %w", errSpoolCorrupt, err)
	}
	rest := plain[d.InputOffset():]
	if s.Inline != int64(len(rest)) {
		return stagedFile{}, errSpoolCorrupt
	}
	h.i++
	sf := stagedFile{f: s.F, blocks: s.Blocks}
	if s.Inline > 0 {
		sf.data = rest
	}
	return sf, nil
}

func (sp *spool) close() {
	_ = sp.f.Close()
	_ = sp.hf.Close()
}
