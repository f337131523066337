package envelope

import (
	"cmp"
	"context"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
)

// Sink receives sealed chunks from a [Writer].
type Sink interface {
	// PutChunk stores chunk index of stream streamID. From the call on the
	// sink owns sealed: the writer never touches it again. A sink that keeps
	// it past the call (to upload it in the background) should hand it back
	// with [Writer.Release] once done so that the writer reuses it; otherwise
	// the writer allocates a fresh buffer per chunk. PutChunk may block to
	// limit the chunks in flight: that limit times the chunk size is the
	// writer's memory bound.
	PutChunk(ctx context.Context, streamID uint32, index uint64, sealed []byte) error
}

// WriterOptions are optional knobs of [NewWriter]; nil means defaults.
type WriterOptions struct {
	// ChunkSize is the plaintext size of every chunk but a stream's last,
	// between MinChunkSize and MaxChunkSize; 0 means DefaultChunkSize.
	ChunkSize int
	// Rand is the source of the per-backup salt; nil means crypto/rand. Only
	// the test-vector generator sets it, to make vectors reproducible.
	Rand io.Reader
}

// maxFree caps the recycled buffers a Writer keeps.
const maxFree = 64

var errFinished = errors.New("envelope: the writer is finished")

// Writer writes one backup: streams of sealed chunks, then the manifest.
// Its methods are safe for concurrent use; streams may be written one after
// the other or at the same time.
type Writer struct {
	sink   Sink
	m      Manifest // header fields; Streams is filled by Finish
	aead   cipher.AEAD
	macKey []byte
	prefix []byte

	mu      sync.Mutex
	streams map[uint32]*StreamWriter
	free    [][]byte
	done    bool
}

// NewWriter starts a backup of tenant's data with id backupID, whose data key
// dk is wrapped as key says. Sealed chunks go to sink. The writer derives its
// subkeys at once and keeps no reference to dk: the caller may Destroy it as
// soon as it is wrapped and NewWriter has returned.
func NewWriter(dk *DataKey, tenant, backupID string, key KeyRef, sink Sink, opts *WriterOptions) (*Writer, error) {
	var o WriterOptions
	if opts != nil {
		o = *opts
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if sink == nil {
		return nil, errors.New("envelope: NewWriter needs a sink")
	}
	w := &Writer{
		sink: sink,
		m: Manifest{
			Version: Version, Tenant: tenant, BackupID: backupID, ChunkSize: o.ChunkSize,
			Key: KeyRef{Source: key.Source, KeyID: key.KeyID, Algorithm: key.Algorithm, WrappedKey: slices.Clone(key.WrappedKey)},
		},
		streams: make(map[uint32]*StreamWriter),
	}
	if err := w.m.validate(); err != nil {
		return nil, err
	}
	w.m.salt = make([]byte, saltSize)
	if _, err := io.ReadFull(o.Rand, w.m.salt); err != nil {
		return nil, fmt.Errorf("envelope: failed to generate a salt: %w", err)
	}
	keys, err := derive(dk, w.m.salt)
	if err != nil {
		return nil, err
	}
	defer keys.zero()
	if w.aead, err = keys.payloadAEAD(); err != nil {
		return nil, err
	}
	w.macKey = slices.Clone(keys.manifest)
	w.m.commitment = keys.commitment
	w.prefix = aadPrefix(tenant, backupID)
	return w, nil
}

// Create opens stream id for writing. Each id may be created once. ctx is
// passed to the sink's PutChunk for every chunk of the stream.
func (w *Writer) Create(ctx context.Context, id uint32) (*StreamWriter, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return nil, errFinished
	}
	if _, ok := w.streams[id]; ok {
		return nil, fmt.Errorf("envelope: stream %d already exists", id)
	}
	if len(w.streams) >= MaxStreams {
		return nil, fmt.Errorf("envelope: a backup holds at most %d streams", MaxStreams)
	}
	sw := &StreamWriter{w: w, ctx: ctx, id: id, buf: make([]byte, 0, w.m.ChunkSize)}
	w.streams[id] = sw
	return sw, nil
}

// Release hands back a sealed buffer the sink no longer needs, for reuse.
// Passing anything else, or a buffer still in use, corrupts later chunks.
func (w *Writer) Release(sealed []byte) {
	if cap(sealed) != w.m.ChunkSize+tagSize {
		return
	}
	w.mu.Lock()
	if !w.done && len(w.free) < maxFree {
		w.free = append(w.free, sealed[:0])
	}
	w.mu.Unlock()
}

func (w *Writer) buffer() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.free); n > 0 {
		b := w.free[n-1]
		w.free = w.free[:n-1]
		return b
	}
	return make([]byte, 0, w.m.ChunkSize+tagSize)
}

// Finish returns the authenticated manifest. Every created stream must have
// been closed without error. Finish zeroes the writer's keys; the writer
// can't be used afterwards. The caller stores the manifest after all chunks
// are stored (FORMAT.md §7).
func (w *Writer) Finish() ([]byte, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return nil, errFinished
	}
	m := w.m
	m.Streams = make([]StreamInfo, 0, len(w.streams))
	for id, sw := range w.streams {
		if !sw.closed {
			return nil, fmt.Errorf("envelope: stream %d is not closed", id)
		}
		if sw.err != nil {
			return nil, fmt.Errorf("envelope: stream %d failed: %w", id, sw.err)
		}
		m.Streams = append(m.Streams, sw.info())
	}
	slices.SortFunc(m.Streams, func(a, b StreamInfo) int { return cmp.Compare(a.ID, b.ID) })
	if err := m.validate(); err != nil {
		panic("envelope: internal error: " + err.Error())
	}
	body := m.appendBody(nil)
	mac := hmac.New(sha256.New, w.macKey)
	mac.Write(body)
	out := mac.Sum(body)
	w.abortLocked()
	return out, nil
}

// Abort zeroes the writer's keys and makes it unusable, for a backup that
// will not be finished. Abort after Finish does nothing.
func (w *Writer) Abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.abortLocked()
}

func (w *Writer) abortLocked() {
	clear(w.macKey)
	w.done = true
	w.free = nil
}
