package envelope

import (
	"context"
	"fmt"
	"io"
)

// Stream returns a reader of the plaintext of stream streamID that pulls
// sealed chunks from src, one at a time, in order. ctx is passed to every
// src.Chunk call. The stream must be listed in the manifest.
func (r *Reader) Stream(ctx context.Context, streamID uint32, src Source) (*StreamReader, error) {
	s, ok := r.m.Stream(streamID)
	if !ok {
		return nil, fmt.Errorf("envelope: backup %s has no stream %d", r.m.BackupID, streamID)
	}
	return &StreamReader{r: r, ctx: ctx, src: src, info: s, plain: make([]byte, 0, r.m.ChunkSize)}, nil
}

// StreamReader decrypts one stream; it is an io.Reader and an io.WriterTo.
// It returns io.EOF only after it has authenticated the stream's final
// chunk: the one at the last index the manifest declares, sealed as final.
// A missing, extra, reordered, resized or tampered chunk is [ErrIntegrity]
// (or the Source's error, wrapped, for a chunk it cannot supply), and errors
// are sticky. Plaintext is released a chunk at a time, once that chunk is
// authenticated: a caller that must not act on data from a backup that
// later fails should run [Reader.Verify] first.
type StreamReader struct {
	r     *Reader
	ctx   context.Context
	src   Source
	info  StreamInfo
	next  uint64 // index of the next chunk to fetch
	plain []byte // decrypted current chunk
	pos   int    // unread offset in plain
	p     chunkParams
	err   error
}

// Read implements io.Reader.
func (s *StreamReader) Read(p []byte) (int, error) {
	for s.pos == len(s.plain) {
		if err := s.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, s.plain[s.pos:])
	s.pos += n
	return n, nil
}

// WriteTo implements io.WriterTo, so io.Copy writes straight from the
// decrypted chunk buffer.
func (s *StreamReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		for s.pos == len(s.plain) {
			if err := s.fill(); err == io.EOF {
				return total, nil
			} else if err != nil {
				return total, err
			}
		}
		n, err := w.Write(s.plain[s.pos:])
		s.pos += n
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
}

// fill decrypts the next chunk into plain, or returns the sticky error, or
// io.EOF once the final chunk is consumed.
func (s *StreamReader) fill() error {
	if s.err != nil {
		return s.err
	}
	if s.next == s.info.Chunks {
		clear(s.plain[:cap(s.plain)])
		s.err = io.EOF
		return s.err
	}
	sealed, err := s.src.Chunk(s.ctx, s.info.ID, s.next)
	if err != nil {
		s.err = fmt.Errorf("envelope: failed to read chunk %d of stream %d: %w", s.next, s.info.ID, err)
		return s.err
	}
	plain, err := s.r.openChunk(&s.p, s.plain[:0], s.info.ID, s.next, sealed)
	if err != nil {
		s.plain, s.pos = s.plain[:0], 0
		s.err = err
		return s.err
	}
	s.plain, s.pos = plain, 0
	s.next++
	return nil
}
