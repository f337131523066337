package restore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/twinit/byok-backup/internal/assets"
)

// stageBlockSize is the size of the blocks pass 1 stages on the target's
// file blobs (the last block of a file is shorter). 8 MiB rather than 4:
// Azurite's cost is per request as much as per byte, and halving the
// blocks cut its CPU over a 1 GiB restore by about 15 % (docs/BENCHMARKS.md,
// issue 13); Parallelism such buffers are in flight.
const stageBlockSize = 8 << 20

// inlineMax is the largest file pass 1 keeps (sealed, in the spool)
// instead of staging: after verification it is written with one Put Blob,
// where staging costs a Put Block and, after verification, a Put Block
// List (issue 13's profile: the per-file commits were a third of the
// restore). Target.PutFileBytes sends it as it is, in one request.
const inlineMax = 1 << 20

// stagedFile is a file whose content pass 1 staged as uncommitted blocks
// 0..blocks-1 of the attempt; pass 2 commits it.
type stagedFile struct {
	f      assets.File
	blocks uint32
	// data is the whole content of a small file kept inline (nil when
	// staged); it is valid only until the next header is read.
	data []byte
}

// stager uploads the files of the files stream as uncommitted blocks while
// pass 1 authenticates them, so the write pass only commits block lists
// instead of moving every byte again. Uncommitted blocks are invisible
// (content, properties, metadata and listing of the target unchanged), so
// verify-before-write still holds: nothing becomes visible before the whole
// backup authenticated. Blocks go up at most parallelism at a time, each
// from one of parallelism reused buffers.
type stager struct {
	target Target
	tenant string
	// nonce makes this attempt's block ids differ from any other attempt's
	// (and from assets.PutFile's, whose ids start with four zero bytes), so
	// a commit never names a block another attempt staged. The tenant lease
	// already keeps two attempts from staging on one tenant at once; the
	// nonce covers what a crashed attempt left behind.
	nonce uint32
	// size is the block size, stageBlockSize but in tests.
	size   int64
	ctx    context.Context
	cancel context.CancelCauseFunc
	bufs   chan []byte
	wg     sync.WaitGroup
	// onFile takes each file once its content was read, in stream order
	// (the spool), so the stager holds no per-file state.
	onFile func(stagedFile) error
	// keepInline, when set, reserves room to keep a small file's content
	// instead of staging it; inlineBuf is reused (onFile copies it out).
	keepInline func(n int64) bool
	inlineBuf  []byte
}

func newStager(ctx context.Context, target Target, tenant string, parallelism int, onFile func(stagedFile) error) (*stager, error) {
	var b [4]byte
	for binary.BigEndian.Uint32(b[:]) == 0 {
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("failed to draw the restore attempt's block id nonce: %w", err)
		}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	st := &stager{target: target, tenant: tenant, nonce: binary.BigEndian.Uint32(b[:]), size: stageBlockSize, ctx: ctx, cancel: cancel, onFile: onFile,
		bufs: make(chan []byte, parallelism)}
	for range parallelism {
		st.bufs <- nil
	}
	return st, nil
}

// blockID is 8 bytes like assets.PutFile's (all ids of one blob must have
// one length): the attempt's nonce, then the block index.
func (st *stager) blockID(i uint32) string {
	var b [8]byte
	binary.BigEndian.PutUint32(b[:4], st.nonce)
	binary.BigEndian.PutUint32(b[4:], i)
	return base64.StdEncoding.EncodeToString(b[:])
}

func (st *stager) blockIDs(n uint32) []string {
	ids := make([]string, n)
	for i := range n {
		ids[i] = st.blockID(i)
	}
	return ids
}

// file reads exactly f.Size bytes of content (authenticated plaintext) and
// stages them in blocks; uploads finish in the background ([stager.wait]).
func (st *stager) file(f assets.File, content io.Reader) error {
	n := (f.Size + st.size - 1) / st.size
	if n > 50000 { // the service's limit of blocks per blob
		return errIntegrity(fmt.Errorf("a file of %d bytes needs %d blocks", f.Size, n))
	}
	if f.Size > 0 && f.Size <= inlineMax && st.keepInline != nil && st.keepInline(f.Size) {
		if int64(cap(st.inlineBuf)) < f.Size {
			st.inlineBuf = make([]byte, inlineMax)
		}
		buf := st.inlineBuf[:f.Size]
		if _, err := io.ReadFull(content, buf); err != nil {
			return err
		}
		// No MD5 here: PutFileBytes sends none; the service computes it.
		return st.onFile(stagedFile{f: f, data: buf})
	}
	// No MD5 of the whole content either: the committed blob gets no
	// Content-MD5, as any block-list upload (docs/DECISIONS.md, issue 13:
	// hashing every staged byte a second time cost 10 % of a restore).
	for i := range n {
		var buf []byte
		select {
		case buf = <-st.bufs:
		case <-st.ctx.Done():
			return context.Cause(st.ctx)
		}
		if int64(cap(buf)) < st.size {
			buf = make([]byte, st.size)
		}
		buf = buf[:min(st.size, f.Size-i*st.size)]
		if _, err := io.ReadFull(content, buf); err != nil {
			st.bufs <- buf
			return err
		}
		id := st.blockID(uint32(i))
		st.wg.Go(func() {
			defer func() { st.bufs <- buf }()
			if err := st.target.StageBlock(st.ctx, st.tenant, f.Path, id, buf); err != nil {
				st.cancel(err)
			}
		})
	}
	return st.onFile(stagedFile{f: f, blocks: uint32(n)})
}

// wait waits for the uploads in flight and returns the first failure.
func (st *stager) wait() error {
	st.wg.Wait()
	err := context.Cause(st.ctx)
	st.cancel(nil)
	return err
}
