package restore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/envelope"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// memSink keeps sealed chunks by stream and index.
type memSink map[[2]uint64][]byte

func (m memSink) PutChunk(_ context.Context, id uint32, i uint64, sealed []byte) error {
	m[[2]uint64{uint64(id), i}] = bytes.Clone(sealed)
	return nil
}

// sealed writes one stream of plaintext into a backup with a small chunk
// size and returns the opened reader, its manifest and the chunks.
func sealed(t *testing.T, plain []byte) (*envelope.Reader, *envelope.Manifest, memSink) {
	t.Helper()
	dk, err := envelope.NewDataKey()
	if err != nil {
		t.Fatal(err)
	}
	sink := memSink{}
	id := catalog.NewID(time.Now())
	w, err := envelope.NewWriter(dk, "acme", id, envelope.KeyRef{Source: keywrap.Platform,
		KeyID: "https://kv.localhost/keys/k/0123456789abcdef0123456789abcdef", Algorithm: keywrap.Algorithm, WrappedKey: []byte{1}},
		sink, &envelope.WriterOptions{ChunkSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := w.Create(t.Context(), 0)
	s.Write(plain)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	m, _ := envelope.ParseManifest(raw)
	r, err := envelope.Open(m, dk, "acme", id)
	if err != nil {
		t.Fatal(err)
	}
	return r, r.Manifest(), sink
}

// TestPlainStreamOrderAndSpool: chunks fetched out of order (random
// delays) come out in order; the spool gives back exactly what it was
// given; a failing chunk stops the stream with its error.
func TestPlainStreamOrderAndSpool(t *testing.T) {
	plain := make([]byte, 64*37+5)
	for i := range plain {
		plain[i] = byte(i * 7)
	}
	r, m, chunks := sealed(t, plain)
	info, _ := m.Stream(0)
	fetch := func(_ context.Context, id uint32, i uint64) ([]byte, error) {
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
		return bytes.Clone(chunks[[2]uint64{uint64(id), i}]), nil
	}
	sp, err := newSpool(t.TempDir(), m, 1<<30, newChunkPool(int(m.ChunkSize)+16, 4))
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	for _, p := range []int{1, 3, 8} {
		ps := newPlainStream(t.Context(), r, info, fetch, newBudget(p), sp.put)
		got, err := io.ReadAll(ps)
		ps.Close()
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("parallelism %d: %d bytes, %v", p, len(got), err)
		}
	}
	ps := newPlainStream(t.Context(), r, info, sp.fetch(m), newBudget(4), nil)
	got, err := io.ReadAll(ps)
	ps.Close()
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("from the spool: %d bytes, %v", len(got), err)
	}

	boom := errors.New("boom")
	bad := func(ctx context.Context, id uint32, i uint64) ([]byte, error) {
		if i == 20 {
			return nil, boom
		}
		return fetch(ctx, id, i)
	}
	ps = newPlainStream(t.Context(), r, info, bad, newBudget(4), nil)
	got, err = io.ReadAll(ps)
	ps.Close()
	if !errors.Is(err, boom) || len(got) != 20*64 {
		t.Fatalf("failing chunk: %d bytes, %v", len(got), err)
	}
	flipped := func(ctx context.Context, id uint32, i uint64) ([]byte, error) {
		b, err := fetch(ctx, id, i)
		if i == 3 {
			b[0] ^= 1
		}
		return b, err
	}
	ps = newPlainStream(t.Context(), r, info, flipped, newBudget(4), nil)
	_, err = io.ReadAll(ps)
	ps.Close()
	if errcode.CodeOf(err) != errcode.IntegrityCheckFailed {
		t.Fatalf("flipped chunk: %v", err)
	}
}

func TestLayoutOf(t *testing.T) {
	id := catalog.NewID(time.Now())
	for blob, ok := range map[string]bool{
		"acme/" + id + "/manifest":           true,
		"acme/" + id + "/a1/manifest":        true,
		"acme/" + id + "/a/b/manifest":       false,
		"other/" + id + "/manifest":          false,
		"acme/" + id + "/a1/manifest.x":      false,
		"acme/" + id + "/../x/manifest":      false,
		"acme/" + id + "/a1/chunks/manifest": false,
	} {
		l, err := layoutOf(&catalog.Backup{Tenant: "acme", BackupID: id, ManifestBlob: blob})
		if (err == nil) != ok || ok && l.Manifest() != blob {
			t.Errorf("layoutOf(%q) = %+v, %v; want ok=%v", blob, l, err, ok)
		}
	}
}

// FuzzLayoutOf: a manifest blob name from the catalog is accepted only if
// it is exactly a layout's manifest name of that backup.
func FuzzLayoutOf(f *testing.F) {
	id := catalog.NewID(time.Unix(1e9, 0))
	f.Add("acme/" + id + "/a1/manifest")
	f.Add("acme/" + id + "/manifest")
	f.Add("acme/" + id + "//manifest")
	f.Fuzz(func(t *testing.T, blob string) {
		l, err := layoutOf(&catalog.Backup{Tenant: "acme", BackupID: id, ManifestBlob: blob})
		if err == nil && (l.Manifest() != blob || l.Tenant != "acme" || l.BackupID != id) {
			t.Fatalf("accepted %q as %+v", blob, l)
		}
	})
}

// TestPlainStreamsShareBudget: two streams on one budget never hold more
// chunks at once (fetched, being fetched or being read) than the budget,
// whichever reader is slow, and both finish with their exact content; a
// stream closed half-read gives back every token it held.
func TestPlainStreamsShareBudget(t *testing.T) {
	plainA := make([]byte, 64*40+3)
	plainB := make([]byte, 64*25)
	for i := range plainA {
		plainA[i] = byte(i * 3)
	}
	for i := range plainB {
		plainB[i] = byte(i * 5)
	}
	ra, ma, ca := sealed(t, plainA)
	rb, mb, cb := sealed(t, plainB)
	var mu sync.Mutex
	held, peak := 0, 0
	counting := func(chunks memSink) fetchFunc {
		return func(_ context.Context, id uint32, i uint64) ([]byte, error) {
			mu.Lock()
			held++
			peak = max(peak, held)
			mu.Unlock()
			time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
			return bytes.Clone(chunks[[2]uint64{uint64(id), i}]), nil
		}
	}
	release := func([]byte) {
		mu.Lock()
		held--
		mu.Unlock()
	}
	for _, n := range []int{3, 5} {
		held, peak = 0, 0
		b := newBudget(n)
		ia, _ := ma.Stream(0)
		ib, _ := mb.Stream(0)
		a := newPlainStream(t.Context(), ra, ia, counting(ca), b, nil)
		a.release = release
		bs := newPlainStream(t.Context(), rb, ib, counting(cb), b, nil)
		bs.release = release
		var gotA, gotB []byte
		var errA, errB error
		var wg sync.WaitGroup
		wg.Go(func() {
			// The slow reader: a few bytes at a time, with pauses.
			buf := make([]byte, 7)
			for {
				k, err := a.Read(buf)
				gotA = append(gotA, buf[:k]...)
				if err != nil {
					if err != io.EOF {
						errA = err
					}
					return
				}
				time.Sleep(50 * time.Microsecond)
			}
		})
		wg.Go(func() { gotB, errB = io.ReadAll(bs) })
		wg.Wait()
		a.Close()
		bs.Close()
		if errA != nil || errB != nil || !bytes.Equal(gotA, plainA) || !bytes.Equal(gotB, plainB) {
			t.Fatalf("budget %d: A %d bytes, %v; B %d bytes, %v", n, len(gotA), errA, len(gotB), errB)
		}
		if peak > n || peak < 2 {
			t.Errorf("budget %d: %d chunks held at once", n, peak)
		}
		if len(b) != 0 || held != 0 {
			t.Errorf("budget %d: %d tokens and %d buffers not given back", n, len(b), held)
		}
	}

	// Closed half-read: every token comes back.
	b := newBudget(3)
	ia, _ := ma.Stream(0)
	a := newPlainStream(t.Context(), ra, ia, counting(ca), b, nil)
	if _, err := io.ReadFull(a, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if len(b) != 0 {
		t.Errorf("closed half-read: %d tokens held", len(b))
	}
}
