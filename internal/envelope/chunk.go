package envelope

import (
	"encoding/binary"
	"fmt"
)

// maxAADSize bounds the chunk AAD: version, two length-prefixed ids (≤ 63 and
// ≤ 64 bytes), stream id, chunk index and final flag.
const maxAADSize = 1 + 1 + 63 + 1 + 64 + 4 + 8 + 1

// aadPrefix is the part of every chunk's AAD that is fixed for a backup
// (FORMAT.md §5.2).
func aadPrefix(tenant, backupID string) []byte {
	b := make([]byte, 0, maxAADSize)
	b = append(b, Version)
	b = appendBytes8(b, []byte(tenant))
	return appendBytes8(b, []byte(backupID))
}

// chunkParams is the per-chunk nonce and AAD scratch space; each sequential
// user (stream writer, stream reader, verify worker) owns one so that
// sealing and opening allocate nothing.
type chunkParams struct {
	nonce [nonceSize]byte
	aad   [maxAADSize]byte
	n     int // length of the AAD in aad
}

// set fills nonce and AAD for chunk index of stream (FORMAT.md §5.1, §5.2).
func (p *chunkParams) set(prefix []byte, stream uint32, index uint64, final bool) {
	if index >= MaxChunks {
		panic(fmt.Sprintf("envelope: internal error: chunk index %d out of range", index))
	}
	var flag byte
	if final {
		flag = 1
	}
	binary.BigEndian.PutUint32(p.nonce[0:4], stream)
	// bytes 4..10 hold the 56-bit index; byte 4 of the uint64 encoding is
	// its top byte, which is zero because index < 2^56.
	var idx [8]byte
	binary.BigEndian.PutUint64(idx[:], index)
	copy(p.nonce[4:11], idx[1:])
	p.nonce[11] = flag

	n := copy(p.aad[:], prefix)
	binary.BigEndian.PutUint32(p.aad[n:], stream)
	binary.BigEndian.PutUint64(p.aad[n+4:], index)
	p.aad[n+12] = flag
	p.n = n + 13
}

func (p *chunkParams) additionalData() []byte { return p.aad[:p.n] }

// ChunkName is a suggested blob name for a chunk, relative to the backup's
// prefix: fixed-width hex so names sort by stream, then index.
func ChunkName(streamID uint32, index uint64) string {
	return fmt.Sprintf("%08x-%016x", streamID, index)
}
