package envelope

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"sync"
)

// Source supplies sealed chunks to a [StreamReader] and to [Reader.Verify].
type Source interface {
	// Chunk returns the sealed chunk index of stream streamID. The reader
	// neither modifies nor keeps the slice: it is done with it before it
	// calls Chunk again (from the same goroutine). A chunk that does not
	// exist is an error the caller classifies (for example one wrapping
	// fs.ErrNotExist); the reader passes it through wrapped.
	Chunk(ctx context.Context, streamID uint32, index uint64) ([]byte, error)
}

// Reader opens the chunks of one authenticated backup. Its methods are safe
// for concurrent use.
type Reader struct {
	m      *Manifest
	aead   cipher.AEAD
	prefix []byte
	params sync.Pool // *chunkParams for OpenChunk
}

// Open authenticates manifest m with data key dk and checks that it belongs
// to the backup the caller expects: tenant and backupID. A wrong key, a
// manifest that is not authentic, or a different tenant or backup all return
// [ErrIntegrity]. Open keeps no reference to dk.
func Open(m *Manifest, dk *DataKey, tenant, backupID string) (*Reader, error) {
	if m == nil || m.raw == nil {
		return nil, fmt.Errorf("envelope: Open needs a manifest from ParseManifest")
	}
	// Re-parse the bytes that will be authenticated: m's exported fields may
	// have been changed since.
	am, err := ParseManifest(m.raw)
	if err != nil {
		return nil, err
	}
	keys, err := derive(dk, am.salt)
	if err != nil {
		return nil, err
	}
	defer keys.zero()
	ok := subtle.ConstantTimeCompare(keys.commitment, am.commitment) == 1
	body := am.raw[:len(am.raw)-macSize]
	mac := hmac.New(sha256.New, keys.manifest)
	mac.Write(body)
	ok = hmac.Equal(mac.Sum(nil), am.raw[len(body):]) && ok
	ok = am.Tenant == tenant && am.BackupID == backupID && ok
	if !ok {
		return nil, ErrIntegrity
	}
	aead, err := keys.payloadAEAD()
	if err != nil {
		return nil, err
	}
	return &Reader{
		m:      am,
		aead:   aead,
		prefix: aadPrefix(am.Tenant, am.BackupID),
		params: sync.Pool{New: func() any { return new(chunkParams) }},
	}, nil
}

// Manifest returns the authenticated manifest (a copy).
func (r *Reader) Manifest() *Manifest {
	m := *r.m
	m.Streams = append([]StreamInfo(nil), r.m.Streams...)
	m.Key.WrappedKey = bytes.Clone(r.m.Key.WrappedKey)
	return &m
}

// OpenChunk authenticates and decrypts chunk index of stream streamID in
// place: the returned plaintext aliases sealed, whose contents are
// overwritten either way. It checks the chunk against the manifest (the
// stream exists, index < its chunk count, the length is exactly the declared
// one, final exactly at the last index) and returns [ErrIntegrity] for any
// mismatch. Use it to verify or restore chunks in parallel.
func (r *Reader) OpenChunk(streamID uint32, index uint64, sealed []byte) ([]byte, error) {
	p := r.params.Get().(*chunkParams)
	defer r.params.Put(p)
	return r.openChunk(p, sealed[:0], streamID, index, sealed)
}

// openChunk appends the plaintext of sealed to dst.
func (r *Reader) openChunk(p *chunkParams, dst []byte, streamID uint32, index uint64, sealed []byte) ([]byte, error) {
	s, ok := r.m.Stream(streamID)
	if !ok || index >= s.Chunks || len(sealed) != chunkLen(s, r.m.ChunkSize, index)+tagSize {
		return nil, ErrIntegrity
	}
	p.set(r.prefix, streamID, index, index+1 == s.Chunks)
	out, err := r.aead.Open(dst, p.nonce[:], sealed, p.additionalData())
	if err != nil {
		return nil, ErrIntegrity
	}
	return out, nil
}

// Verify authenticates every chunk of every stream in the manifest, with up
// to parallelism chunks in flight (at least 1), and produces no output. It
// returns the first error: [ErrIntegrity], or a Source error wrapped.
// Memory is bounded by parallelism × chunk size plus what Source holds.
func (r *Reader) Verify(ctx context.Context, src Source, parallelism int) error {
	parallelism = max(parallelism, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type job struct {
		stream uint32
		index  uint64
	}
	jobs := make(chan job)
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	fail := func(err error) {
		once.Do(func() { firstErr = err; cancel() })
	}
	for range parallelism {
		wg.Go(func() {
			p := new(chunkParams)
			buf := make([]byte, 0, r.m.ChunkSize)
			for j := range jobs {
				sealed, err := src.Chunk(ctx, j.stream, j.index)
				if err != nil {
					fail(fmt.Errorf("envelope: failed to read chunk %d of stream %d: %w", j.index, j.stream, err))
					continue
				}
				if _, err := r.openChunk(p, buf[:0], j.stream, j.index, sealed); err != nil {
					fail(err)
				}
			}
		})
	}
feed:
	for _, s := range r.m.Streams {
		for i := range s.Chunks {
			select {
			case jobs <- job{s.ID, i}:
			case <-ctx.Done():
				break feed
			}
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	// Every chunk was sent to a worker unless ctx was cancelled from outside.
	return context.Cause(ctx)
}
