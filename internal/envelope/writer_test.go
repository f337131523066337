package envelope

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"testing"

	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keywrap"
)

type failSink struct {
	after int
	err   error
}

func (f *failSink) PutChunk(context.Context, uint32, uint64, []byte) error {
	if f.after == 0 {
		return f.err
	}
	f.after--
	return nil
}

func TestWriterSinkErrorIsSticky(t *testing.T) {
	cause := errors.New("upload failed")
	w, err := NewWriter(testKey(t), "acme", "b", testKeyRef(), &failSink{after: 1, err: cause}, &WriterOptions{ChunkSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	sw, _ := w.Create(t.Context(), 0)
	if _, err := sw.Write(make([]byte, 20)); !errors.Is(err, cause) {
		t.Fatalf("Write = %v, want the sink's error", err)
	}
	if _, err := sw.Write([]byte{1}); !errors.Is(err, cause) {
		t.Fatalf("second Write = %v, want the sticky error", err)
	}
	if err := sw.Close(); !errors.Is(err, cause) {
		t.Fatalf("Close = %v", err)
	}
	if _, err := w.Finish(); !errors.Is(err, cause) {
		t.Fatalf("Finish = %v, want the stream's error", err)
	}
}

func TestWriterMisuse(t *testing.T) {
	w, _ := NewWriter(testKey(t), "acme", "b", testKeyRef(), newMemStore(), nil)
	sw, _ := w.Create(t.Context(), 0)
	if _, err := w.Create(t.Context(), 0); err == nil {
		t.Error("created stream 0 twice")
	}
	if _, err := w.Finish(); err == nil {
		t.Error("Finish with an open stream succeeded")
	}
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sw.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := sw.Write([]byte{1}); err == nil {
		t.Error("Write after Close succeeded")
	}
	if _, err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Finish(); err == nil {
		t.Error("second Finish succeeded")
	}
	if _, err := w.Create(t.Context(), 1); err == nil {
		t.Error("Create after Finish succeeded")
	}

	w, _ = NewWriter(testKey(t), "acme", "b", testKeyRef(), newMemStore(), &WriterOptions{ChunkSize: 2})
	sw, _ = w.Create(t.Context(), 0)
	sw.Write([]byte{1, 2, 3})
	w.Abort()
	if _, err := sw.Write([]byte{4, 5}); err == nil {
		t.Error("Write after Abort succeeded")
	}
	if _, err := w.Finish(); err == nil {
		t.Error("Finish after Abort succeeded")
	}
}

func TestNewWriterValidates(t *testing.T) {
	dk := testKey(t)
	good := testKeyRef()
	cases := map[string]func(tenant, id *string, k *KeyRef, o *WriterOptions){
		"tenant uppercase":   func(tn, _ *string, _ *KeyRef, _ *WriterOptions) { *tn = "Acme" },
		"tenant dash end":    func(tn, _ *string, _ *KeyRef, _ *WriterOptions) { *tn = "acme-" },
		"tenant too long":    func(tn, _ *string, _ *KeyRef, _ *WriterOptions) { *tn = string(bytes.Repeat([]byte("a"), 64)) },
		"backup id empty":    func(_, id *string, _ *KeyRef, _ *WriterOptions) { *id = "" },
		"backup id slash":    func(_, id *string, _ *KeyRef, _ *WriterOptions) { *id = "a/b" },
		"backup id 65":       func(_, id *string, _ *KeyRef, _ *WriterOptions) { *id = string(bytes.Repeat([]byte("a"), 65)) },
		"source":             func(_, _ *string, k *KeyRef, _ *WriterOptions) { k.Source = "other" },
		"versionless key id": func(_, _ *string, k *KeyRef, _ *WriterOptions) { k.KeyID = "https://v.vault.azure.net/keys/k" },
		"http key id":        func(_, _ *string, k *KeyRef, _ *WriterOptions) { k.KeyID = "http://v.vault.azure.net/keys/k/1" },
		"no algorithm":       func(_, _ *string, k *KeyRef, _ *WriterOptions) { k.Algorithm = "" },
		"RSA1_5":             func(_, _ *string, k *KeyRef, _ *WriterOptions) { k.Algorithm = "RSA1_5" },
		"RSA-OAEP":           func(_, _ *string, k *KeyRef, _ *WriterOptions) { k.Algorithm = "RSA-OAEP" },
		"no wrapped key":     func(_, _ *string, k *KeyRef, _ *WriterOptions) { k.WrappedKey = nil },
		"chunk size big":     func(_, _ *string, _ *KeyRef, o *WriterOptions) { o.ChunkSize = MaxChunkSize + 1 },
		"chunk size neg":     func(_, _ *string, _ *KeyRef, o *WriterOptions) { o.ChunkSize = -1 },
	}
	for name, mutate := range cases {
		tenant, id, k, o := "acme", "b-1", good, WriterOptions{}
		mutate(&tenant, &id, &k, &o)
		if _, err := NewWriter(dk, tenant, id, k, newMemStore(), &o); err == nil {
			t.Errorf("%s: NewWriter accepted it", name)
		}
	}
	if _, err := NewWriter(dk, "acme", "b", good, nil, nil); err == nil {
		t.Error("nil sink accepted")
	}
}

// TestWriterOptions proves each option takes effect.
func TestWriterOptions(t *testing.T) {
	dk := testKey(t)
	st := newMemStore()
	w, _ := NewWriter(dk, "acme", "b", testKeyRef(), st, nil)
	sw, _ := w.Create(t.Context(), 0)
	sw.Write(make([]byte, DefaultChunkSize+1))
	sw.Close()
	man, _ := w.Finish()
	if m, _ := ParseManifest(man); m.ChunkSize != DefaultChunkSize || len(st.get(0, 0)) != DefaultChunkSize+tagSize {
		t.Fatalf("default chunk size not used: %d", m.ChunkSize)
	}

	salt := bytes.Repeat([]byte{7}, saltSize)
	var mans [2][]byte
	for i := range mans {
		w, _ := NewWriter(dk, "acme", "b", testKeyRef(), newMemStore(), &WriterOptions{ChunkSize: 10, Rand: bytes.NewReader(salt)})
		mans[i], _ = w.Finish()
	}
	if !bytes.Equal(mans[0], mans[1]) || !bytes.Contains(mans[0], salt) {
		t.Fatal("Rand did not supply the salt")
	}
	if m, _ := ParseManifest(mans[0]); m.ChunkSize != 10 {
		t.Fatalf("ChunkSize option ignored: %d", m.ChunkSize)
	}
	if _, err := NewWriter(dk, "acme", "b", testKeyRef(), newMemStore(), &WriterOptions{Rand: bytes.NewReader(nil)}); err == nil {
		t.Fatal("a failing Rand was ignored")
	}
}

// releaseCounter counts fresh buffers: with Release, a sequential writer
// needs one.
type releaseCounter struct {
	w    *Writer
	seen map[*byte]bool
}

func (r *releaseCounter) PutChunk(_ context.Context, _ uint32, _ uint64, sealed []byte) error {
	r.seen[&sealed[:1][0]] = true
	r.w.Release(sealed)
	return nil
}

func TestWriterReleaseReusesBuffers(t *testing.T) {
	rc := &releaseCounter{seen: map[*byte]bool{}}
	w, _ := NewWriter(testKey(t), "acme", "b", testKeyRef(), rc, &WriterOptions{ChunkSize: 16})
	rc.w = w
	sw, _ := w.Create(t.Context(), 0)
	sw.Write(make([]byte, 16*50))
	sw.Close()
	if len(rc.seen) != 1 {
		t.Fatalf("%d distinct buffers for 50 chunks, want 1", len(rc.seen))
	}
	// Without Release every chunk gets its own buffer (the sink may keep it).
	st := newMemStore()
	w, _ = NewWriter(testKey(t), "acme", "b", testKeyRef(), st, &WriterOptions{ChunkSize: 16})
	sw, _ = w.Create(t.Context(), 0)
	sw.Write(make([]byte, 16*3))
	sw.Close()
	if &st.get(0, 0)[0] == &st.get(0, 1)[0] {
		t.Fatal("buffers shared without Release")
	}
}

func TestKeyRefFromWrapped(t *testing.T) {
	wr := keywrap.Wrapped{KeyID: "https://kv.vault.azure.net/keys/k/v1", Version: "v1", Algorithm: keywrap.Algorithm, WrappedKey: []byte{1, 2, 3}}
	k := NewKeyRef(keywrap.Platform, wr)
	wr.WrappedKey[0] = 9
	if k.Source != keywrap.Platform || k.KeyID != wr.KeyID || k.Algorithm != wr.Algorithm || k.WrappedKey[0] != 1 {
		t.Fatalf("NewKeyRef = %+v", k)
	}
	back := k.Wrapped()
	if back.KeyID != wr.KeyID || back.Version != "v1" || back.Algorithm != wr.Algorithm || !bytes.Equal(back.WrappedKey, []byte{1, 2, 3}) {
		t.Fatalf("Wrapped = %+v", back)
	}
}

func TestOpenIgnoresEditedFields(t *testing.T) {
	dk := testKey(t)
	man, st := writeBackup(t, dk, "acme", "b", 8, map[uint32][]byte{0: []byte("0123456789")})
	m, _ := ParseManifest(man)
	m.Streams[0].Chunks = 1
	m.Streams[0].PlaintextSize = 8
	m.ChunkSize = 1
	r, err := Open(m, dk, "acme", "b")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := r.Stream(t.Context(), 0, st)
	if got, err := io.ReadAll(s); err != nil || string(got) != "0123456789" {
		t.Fatalf("read %q, %v", got, err)
	}
	if _, err := Open(&Manifest{}, dk, "acme", "b"); err == nil {
		t.Fatal("Open accepted a manifest not from ParseManifest")
	}
}

func TestMissingChunkIsNeverEOF(t *testing.T) {
	dk := testKey(t)
	man, st := writeBackup(t, dk, "acme", "b", 4, map[uint32][]byte{0: []byte("0123456789")})
	delete(st.chunks, [2]uint64{0, 2})
	r := openBackup(t, man, dk, "acme", "b")
	s, _ := r.Stream(t.Context(), 0, st)
	got, err := io.ReadAll(s)
	if !errors.Is(err, fs.ErrNotExist) || string(got) != "01234567" {
		t.Fatalf("ReadAll = %q, %v; want the 8 authenticated bytes and the source's error", got, err)
	}
	if _, err := s.Read(make([]byte, 1)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("error not sticky: %v", err)
	}
	if err := r.Verify(t.Context(), st, 4); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Verify = %v", err)
	}
}

func TestVerifyParallelAndCancel(t *testing.T) {
	dk := testKey(t)
	man, st := writeBackup(t, dk, "acme", "b", 16, map[uint32][]byte{0: payload(16*40, 1), 1: payload(100, 2)})
	r := openBackup(t, man, dk, "acme", "b")
	for _, p := range []int{0, 1, 3, 100} {
		if err := r.Verify(t.Context(), st, p); err != nil {
			t.Fatalf("parallelism %d: %v", p, err)
		}
	}
	st.get(0, 33)[5] ^= 1
	if err := r.Verify(t.Context(), st, 3); !errors.Is(err, ErrIntegrity) {
		t.Fatalf("Verify of a flipped chunk = %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := r.Verify(ctx, st, 2); !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify with a cancelled context = %v", err)
	}
}

func TestIntegrityErrorIsOpaqueAndCoded(t *testing.T) {
	if ErrIntegrity == ErrUnsupportedFormat || errors.Is(ErrIntegrity, ErrUnsupportedFormat) {
		t.Fatal("the two errors are not distinct")
	}
	if c := errcodeOf(ErrIntegrity); c != "IntegrityCheckFailed" {
		t.Fatalf("code %s", c)
	}
}

func errcodeOf(err error) string { return string(errcode.CodeOf(err)) }
