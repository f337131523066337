package envelope

import (
	"context"
	"errors"
	"fmt"
)

var errClosed = errors.New("envelope: write to a closed stream")

// StreamWriter encrypts one stream into chunks. It is an io.WriteCloser and,
// like any io.Writer, not safe for concurrent use.
//
// The writer holds back one full chunk until it sees more data, so a stream
// whose length is a multiple of the chunk size ends with a full final chunk
// rather than an empty one. Errors are sticky: after a failed Write every
// later call returns the same error.
type StreamWriter struct {
	w      *Writer
	ctx    context.Context
	id     uint32
	buf    []byte // pending plaintext, cap = chunk size
	index  uint64 // next chunk index
	size   uint64 // plaintext bytes sealed so far
	p      chunkParams
	err    error
	closed bool
}

// Write encrypts p. Whole chunks of a large p are sealed straight from p,
// without a copy.
func (s *StreamWriter) Write(p []byte) (int, error) {
	if s.closed {
		return 0, errClosed
	}
	if s.err != nil {
		return 0, s.err
	}
	cs := s.w.m.ChunkSize
	n := 0
	for len(p) > 0 {
		if len(s.buf) == cs { // more data follows, so the held chunk is not final
			if err := s.seal(s.buf, false); err != nil {
				return n, err
			}
			s.buf = s.buf[:0]
		}
		if len(s.buf) == 0 && len(p) > cs {
			if err := s.seal(p[:cs], false); err != nil {
				return n, err
			}
			p, n = p[cs:], n+cs
			continue
		}
		k := copy(s.buf[len(s.buf):cs], p)
		s.buf = s.buf[:len(s.buf)+k]
		p, n = p[k:], n+k
	}
	return n, nil
}

// Close seals the final chunk (empty if nothing was written) and records the
// stream for the manifest. It does not close anything of the sink's. Closing
// twice returns the first result.
func (s *StreamWriter) Close() error {
	if s.closed {
		return s.err
	}
	if s.err == nil {
		_ = s.seal(s.buf, true)
	}
	clear(s.buf) // the last chunk's plaintext; earlier ones were overwritten
	s.buf = nil
	s.w.mu.Lock()
	s.closed = true
	s.w.mu.Unlock()
	return s.err
}

func (s *StreamWriter) seal(plain []byte, final bool) error {
	if s.index >= MaxChunks {
		s.err = fmt.Errorf("envelope: stream %d exceeds %d chunks", s.id, uint64(MaxChunks))
		return s.err
	}
	s.w.mu.Lock()
	done := s.w.done
	s.w.mu.Unlock()
	if done {
		s.err = errFinished
		return s.err
	}
	s.p.set(s.w.prefix, s.id, s.index, final)
	sealed := s.w.aead.Seal(s.w.buffer(), s.p.nonce[:], plain, s.p.additionalData())
	if err := s.w.sink.PutChunk(s.ctx, s.id, s.index, sealed); err != nil {
		s.err = fmt.Errorf("envelope: failed to store chunk %d of stream %d: %w", s.index, s.id, err)
		return s.err
	}
	s.index++
	s.size += uint64(len(plain))
	return nil
}

// info is the stream's manifest entry; valid once closed without error.
func (s *StreamWriter) info() StreamInfo {
	return StreamInfo{ID: s.id, Chunks: s.index, PlaintextSize: s.size, CiphertextSize: s.size + s.index*tagSize}
}
