package envelope

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"testing"
)

// FuzzParseManifest checks that parsing never panics, that anything it
// accepts is canonical (re-encodes to the same bytes) and valid, and that
// every rejection is one of the two documented errors.
func FuzzParseManifest(f *testing.F) {
	n := 0
	for _, v := range loadVectors(f) {
		f.Add(v.manifest)
		n++
	}
	if n == 0 {
		f.Fatal("no seeds")
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			if !errors.Is(err, ErrIntegrity) && !errors.Is(err, ErrUnsupportedFormat) {
				t.Fatalf("undocumented error %v", err)
			}
			return
		}
		if err := m.validate(); err != nil {
			t.Fatalf("accepted an invalid manifest: %v", err)
		}
		if body := m.appendBody(nil); !bytes.Equal(body, b[:len(b)-macSize]) {
			t.Fatal("accepted a manifest that does not re-encode to itself")
		}
	})
}

// encodeChunks serializes chunks for FuzzOpen: repeated
// stream (u32) ‖ index (u32) ‖ length (u32) ‖ bytes.
func encodeChunks(chunks map[[2]uint64][]byte) []byte {
	var b []byte
	for k, c := range chunks {
		b = binary.BigEndian.AppendUint32(b, uint32(k[0]))
		b = binary.BigEndian.AppendUint32(b, uint32(k[1]))
		b = binary.BigEndian.AppendUint32(b, uint32(len(c)))
		b = append(b, c...)
	}
	return b
}

func decodeChunks(b []byte) *memStore {
	st := newMemStore()
	for len(b) >= 12 {
		s, i, n := binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:]), binary.BigEndian.Uint32(b[8:])
		b = b[12:]
		if uint64(n) > uint64(len(b)) {
			n = uint32(len(b))
		}
		st.set(s, uint64(i), b[:n])
		b = b[n:]
	}
	return st
}

// FuzzOpen drives the decrypting reader with arbitrary manifests, keys and
// chunks. It must never panic; whatever it returns as a complete stream must
// have the manifest's declared size, and Verify must agree with reading.
func FuzzOpen(f *testing.F) {
	n := 0
	for _, v := range loadVectors(f) {
		dk, err := hex.DecodeString(v.header["data key"])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(dk, v.header["tenant"], v.header["backup id"], v.manifest, encodeChunks(v.chunks))
		n++
	}
	if n == 0 {
		f.Fatal("no seeds")
	}
	f.Fuzz(func(t *testing.T, key []byte, tenant, backupID string, manifest, chunks []byte) {
		m, err := ParseManifest(manifest)
		if err != nil {
			return
		}
		dk, err := DataKeyFromBytes(key)
		if err != nil {
			return
		}
		r, err := Open(m, dk, tenant, backupID)
		if err != nil {
			if !errors.Is(err, ErrIntegrity) {
				t.Fatalf("Open: undocumented error %v", err)
			}
			return
		}
		st := decodeChunks(chunks)
		allOK := true
		for _, s := range r.Manifest().Streams {
			sr, err := r.Stream(context.Background(), s.ID, st)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(sr)
			if err != nil {
				allOK = false
				continue
			}
			if uint64(len(got)) != s.PlaintextSize {
				t.Fatalf("stream %d: read %d bytes, manifest says %d", s.ID, len(got), s.PlaintextSize)
			}
		}
		if verr := r.Verify(context.Background(), st, 2); (verr == nil) != allOK {
			t.Fatalf("Verify = %v but reading all streams ok = %v", verr, allOK)
		}
	})
}

// FuzzRoundTrip writes arbitrary data in arbitrary pieces with arbitrary
// chunk sizes and reads it back.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("hello, world"), uint16(4), uint16(3))
	f.Add([]byte{}, uint16(1), uint16(1))
	f.Add(bytes.Repeat([]byte{1}, 64), uint16(16), uint16(16))
	f.Fuzz(func(t *testing.T, data []byte, chunkSize, step uint16) {
		if chunkSize == 0 || step == 0 {
			return
		}
		dk := testKey(t)
		st := newMemStore()
		w, err := NewWriter(dk, "acme", "b", testKeyRef(), st, &WriterOptions{ChunkSize: int(chunkSize)})
		if err != nil {
			t.Fatal(err)
		}
		sw, _ := w.Create(context.Background(), 3)
		for rest := data; len(rest) > 0; {
			k := min(int(step), len(rest))
			if _, err := sw.Write(rest[:k]); err != nil {
				t.Fatal(err)
			}
			rest = rest[k:]
		}
		if err := sw.Close(); err != nil {
			t.Fatal(err)
		}
		man, err := w.Finish()
		if err != nil {
			t.Fatal(err)
		}
		r := openBackup(t, man, dk, "acme", "b")
		s, _ := r.Stream(context.Background(), 3, st)
		got, err := io.ReadAll(s)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
