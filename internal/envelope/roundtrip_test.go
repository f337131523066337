package envelope

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/twinit/byok-backup/internal/keywrap"
)

// memStore is a Sink and Source over a map, the way the pipeline's blob
// store will be used.
type memStore struct {
	mu     sync.Mutex
	chunks map[[2]uint64][]byte
	w      *Writer // if set, buffers are copied and released
}

func newMemStore() *memStore { return &memStore{chunks: make(map[[2]uint64][]byte)} }

func (m *memStore) PutChunk(_ context.Context, stream uint32, index uint64, sealed []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.chunks[[2]uint64{uint64(stream), index}] = bytes.Clone(sealed)
	if m.w != nil {
		m.w.Release(sealed)
	}
	return nil
}

func (m *memStore) Chunk(_ context.Context, stream uint32, index uint64) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.chunks[[2]uint64{uint64(stream), index}]
	if !ok {
		return nil, fmt.Errorf("chunk %d/%d: %w", stream, index, fs.ErrNotExist)
	}
	return c, nil
}

func (m *memStore) get(stream uint32, index uint64) []byte {
	return m.chunks[[2]uint64{uint64(stream), index}]
}

func (m *memStore) set(stream uint32, index uint64, b []byte) {
	m.chunks[[2]uint64{uint64(stream), index}] = b
}

func testKeyRef() KeyRef {
	return KeyRef{
		Source:     keywrap.Customer,
		KeyID:      "https://contoso-kv.vault.azure.net/keys/twinit-backup/0123456789abcdef0123456789abcdef",
		Algorithm:  keywrap.Algorithm,
		WrappedKey: bytes.Repeat([]byte{0xa5}, 256),
	}
}

func testKey(t testing.TB) *DataKey {
	t.Helper()
	dk, err := NewDataKey()
	if err != nil {
		t.Fatal(err)
	}
	return dk
}

func payload(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	_, _ = r.Read(b)
	return b
}

// writeBackup writes one backup with the given stream contents and returns
// its manifest and chunks.
func writeBackup(t testing.TB, dk *DataKey, tenant, backupID string, chunkSize int, streams map[uint32][]byte) ([]byte, *memStore) {
	t.Helper()
	st := newMemStore()
	w, err := NewWriter(dk, tenant, backupID, testKeyRef(), st, &WriterOptions{ChunkSize: chunkSize})
	if err != nil {
		t.Fatal(err)
	}
	for id, data := range streams {
		sw, err := w.Create(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sw.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := sw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	man, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return man, st
}

func openBackup(t testing.TB, man []byte, dk *DataKey, tenant, backupID string) *Reader {
	t.Helper()
	m, err := ParseManifest(man)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(m, dk, tenant, backupID)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRoundTripChunkBoundaries(t *testing.T) {
	const cs = 64
	for _, n := range []int{0, 1, cs - 1, cs, cs + 1, 2 * cs, 2*cs + 1, 10*cs - 1, 10 * cs, 37*cs + 5} {
		for _, step := range []int{1, 7, cs, cs + 3, 1 << 20} {
			t.Run(fmt.Sprintf("len=%d,step=%d", n, step), func(t *testing.T) {
				dk := testKey(t)
				data := payload(n, uint64(n))
				st := newMemStore()
				w, err := NewWriter(dk, "acme", "b1", testKeyRef(), st, &WriterOptions{ChunkSize: cs})
				if err != nil {
					t.Fatal(err)
				}
				sw, _ := w.Create(context.Background(), 0)
				for rest := data; len(rest) > 0; {
					k := min(step, len(rest))
					if m, err := sw.Write(rest[:k]); err != nil || m != k {
						t.Fatalf("Write = %d, %v", m, err)
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
				wantChunks := uint64(max(1, (n+cs-1)/cs))
				if uint64(len(st.chunks)) != wantChunks {
					t.Fatalf("%d chunks stored, want %d", len(st.chunks), wantChunks)
				}
				r := openBackup(t, man, dk, "acme", "b1")
				info, _ := r.Manifest().Stream(0)
				if info.Chunks != wantChunks || info.PlaintextSize != uint64(n) || info.CiphertextSize != uint64(n)+16*wantChunks {
					t.Fatalf("manifest stream = %+v", info)
				}
				s, err := r.Stream(context.Background(), 0, st)
				if err != nil {
					t.Fatal(err)
				}
				if err := iotest.TestReader(s, data); err != nil {
					t.Fatal(err)
				}
				s, _ = r.Stream(context.Background(), 0, st)
				var out bytes.Buffer
				if _, err := io.Copy(&out, s); err != nil || !bytes.Equal(out.Bytes(), data) {
					t.Fatalf("io.Copy: %v, equal=%v", err, bytes.Equal(out.Bytes(), data))
				}
				if err := r.Verify(context.Background(), st, 3); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

func TestIOTestReaders(t *testing.T) {
	dk := testKey(t)
	data := payload(1000, 9)
	man, st := writeBackup(t, dk, "acme", "b1", 100, map[uint32][]byte{0: data})
	r := openBackup(t, man, dk, "acme", "b1")
	for name, wrap := range map[string]func(io.Reader) io.Reader{
		"OneByteReader": iotest.OneByteReader, "HalfReader": iotest.HalfReader, "DataErrReader": iotest.DataErrReader,
	} {
		t.Run(name, func(t *testing.T) {
			s, _ := r.Stream(context.Background(), 0, st)
			got, err := io.ReadAll(wrap(s))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("ReadAll: %v, equal=%v", err, bytes.Equal(got, data))
			}
		})
	}
}

func TestTwoStreamsSequentialAndConcurrent(t *testing.T) {
	dk := testKey(t)
	st := newMemStore()
	w, err := NewWriter(dk, "acme", "b2", testKeyRef(), st, &WriterOptions{ChunkSize: 32})
	if err != nil {
		t.Fatal(err)
	}
	data := map[uint32][]byte{0: payload(100, 1), 1: payload(333, 2), 7: payload(64, 3)}
	s0, _ := w.Create(context.Background(), 0)
	s0.Write(data[0])
	s0.Close()
	var wg sync.WaitGroup
	for _, id := range []uint32{7, 1} {
		sw, err := w.Create(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for _, b := range data[id] {
				sw.Write([]byte{b})
			}
			sw.Close()
		})
	}
	wg.Wait()
	man, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	r := openBackup(t, man, dk, "acme", "b2")
	ms := r.Manifest().Streams
	if len(ms) != 3 || ms[0].ID != 0 || ms[1].ID != 1 || ms[2].ID != 7 {
		t.Fatalf("streams %+v", ms)
	}
	for id, want := range data {
		s, err := r.Stream(context.Background(), id, st)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(s)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("stream %d: %v", id, err)
		}
	}
	if _, err := r.Stream(context.Background(), 2, st); err == nil {
		t.Fatal("stream 2 is not in the manifest but Stream succeeded")
	}
}

func TestOpenChunkInPlaceAndParallel(t *testing.T) {
	dk := testKey(t)
	data := payload(50*40+3, 4)
	man, st := writeBackup(t, dk, "acme", "b3", 50, map[uint32][]byte{0: data})
	r := openBackup(t, man, dk, "acme", "b3")
	info, _ := r.Manifest().Stream(0)
	out := make([][]byte, info.Chunks)
	var wg sync.WaitGroup
	for i := range info.Chunks {
		wg.Go(func() {
			sealed := bytes.Clone(st.get(0, i))
			p, err := r.OpenChunk(0, i, sealed)
			if err != nil {
				t.Error(err)
				return
			}
			if len(p) > 0 && &p[0] != &sealed[0] {
				t.Error("OpenChunk did not decrypt in place")
			}
			out[i] = p
		})
	}
	wg.Wait()
	if got := bytes.Join(out, nil); !bytes.Equal(got, data) {
		t.Fatal("parallel OpenChunk output differs")
	}
	if _, err := r.OpenChunk(0, info.Chunks, make([]byte, 19)); !errors.Is(err, ErrIntegrity) {
		t.Fatalf("chunk beyond the count: %v", err)
	}
	if _, err := r.OpenChunk(1, 0, bytes.Clone(st.get(0, 0))); !errors.Is(err, ErrIntegrity) {
		t.Fatalf("unknown stream: %v", err)
	}
}
