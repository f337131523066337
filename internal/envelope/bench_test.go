package envelope

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"io"
	"testing"
	"time"
)

// The benchmarks compare sealing and opening through the envelope with raw
// AES-256-GCM over the same buffers in the same run. Run per core with
// `go test -run=^$ -bench=. -cpu=1 ./internal/envelope/`.

const benchChunk = 1 << 20

func rawAEAD(b *testing.B) cipher.AEAD {
	block, err := aes.NewCipher(make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	return aead
}

// discardSink drops chunks and hands their buffers straight back.
type discardSink struct{ w *Writer }

func (d *discardSink) PutChunk(_ context.Context, _ uint32, _ uint64, sealed []byte) error {
	d.w.Release(sealed)
	return nil
}

func sealEnvelope(b *testing.B, dk *DataKey, data []byte, chunkSize int) {
	sink := &discardSink{}
	w, err := NewWriter(dk, "acme", "bench", testKeyRef(), sink, &WriterOptions{ChunkSize: chunkSize})
	if err != nil {
		b.Fatal(err)
	}
	sink.w = w
	sw, _ := w.Create(context.Background(), 0)
	if _, err := sw.Write(data); err != nil {
		b.Fatal(err)
	}
	if err := sw.Close(); err != nil {
		b.Fatal(err)
	}
	if _, err := w.Finish(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkSeal(b *testing.B) {
	const chunks = 16
	data := payload(chunks*benchChunk, 1)
	b.Run("raw", func(b *testing.B) {
		aead := rawAEAD(b)
		dst := make([]byte, 0, benchChunk+tagSize)
		nonce := make([]byte, nonceSize)
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			for i := range chunks {
				nonce[0] = byte(i)
				dst = aead.Seal(dst[:0], nonce, data[i*benchChunk:(i+1)*benchChunk], nil)
			}
		}
	})
	b.Run("envelope", func(b *testing.B) {
		dk := testKey(b)
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			sealEnvelope(b, dk, data, benchChunk)
		}
	})
}

func BenchmarkOpen(b *testing.B) {
	const chunks = 16
	data := payload(chunks*benchChunk, 2)
	b.Run("raw", func(b *testing.B) {
		aead := rawAEAD(b)
		nonce := make([]byte, nonceSize)
		sealed := make([][]byte, chunks)
		for i := range chunks {
			nonce[0] = byte(i)
			sealed[i] = aead.Seal(nil, nonce, data[i*benchChunk:(i+1)*benchChunk], nil)
		}
		dst := make([]byte, 0, benchChunk)
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			for i := range chunks {
				nonce[0] = byte(i)
				var err error
				if dst, err = aead.Open(dst[:0], nonce, sealed[i], nil); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	dk := testKey(b)
	man, st := writeBackup(b, dk, "acme", "bench", benchChunk, map[uint32][]byte{0: data})
	r := openBackup(b, man, dk, "acme", "bench")
	b.Run("envelope-stream", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			s, err := r.Stream(context.Background(), 0, st)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("envelope-verify", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if err := r.Verify(context.Background(), st, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAllocsPerChunk reports allocs/op for one backup stream of 1 and
// of many chunks: equal numbers mean nothing is allocated per chunk.
func BenchmarkAllocsPerChunk(b *testing.B) {
	const cs = 4 << 10
	dk := testKey(b)
	for _, chunks := range []int{1, 64} {
		data := payload(chunks*cs, 3)
		b.Run(fmt.Sprintf("seal/chunks=%d", chunks), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sealEnvelope(b, dk, data, cs)
			}
		})
		man, st := writeBackup(b, dk, "acme", "bench", cs, map[uint32][]byte{0: data})
		r := openBackup(b, man, dk, "acme", "bench")
		b.Run(fmt.Sprintf("open/chunks=%d", chunks), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s, _ := r.Stream(context.Background(), 0, st)
				if _, err := io.Copy(io.Discard, s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpenChunk opens one chunk in place, as a parallel verifier does.
func BenchmarkOpenChunk(b *testing.B) {
	const cs = 64 << 10
	dk := testKey(b)
	man, st := writeBackup(b, dk, "acme", "bench", cs, map[uint32][]byte{0: payload(2*cs, 4)})
	r := openBackup(b, man, dk, "acme", "bench")
	sealed := st.get(0, 0)
	buf := make([]byte, len(sealed))
	b.SetBytes(cs)
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, sealed)
		if _, err := r.OpenChunk(0, 0, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVsRaw alternates raw AES-256-GCM and the envelope over the same
// 64 MiB (one backup stream of 64 chunks) in every iteration and reports throughput relative to raw
// ("x-raw", goal ≥ 0.8). Alternating cancels out load from other processes,
// which separate benchmarks on a shared machine do not.
func BenchmarkVsRaw(b *testing.B) {
	const chunks = 64
	data := payload(chunks*benchChunk, 5)
	aead := rawAEAD(b)
	nonce := make([]byte, nonceSize)
	dst := make([]byte, 0, benchChunk+tagSize)
	sealed := make([][]byte, chunks)
	for i := range chunks {
		nonce[0] = byte(i)
		sealed[i] = aead.Seal(nil, nonce, data[i*benchChunk:(i+1)*benchChunk], nil)
	}
	dk := testKey(b)
	man, st := writeBackup(b, dk, "acme", "bench", benchChunk, map[uint32][]byte{0: data})
	r := openBackup(b, man, dk, "acme", "bench")

	b.Run("seal", func(b *testing.B) {
		var raw, env time.Duration
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			t0 := time.Now()
			for i := range chunks {
				nonce[0] = byte(i)
				dst = aead.Seal(dst[:0], nonce, data[i*benchChunk:(i+1)*benchChunk], nil)
			}
			t1 := time.Now()
			sealEnvelope(b, dk, data, benchChunk)
			raw, env = raw+t1.Sub(t0), env+time.Since(t1)
		}
		b.ReportMetric(float64(raw)/float64(env), "x-raw")
	})
	b.Run("open", func(b *testing.B) {
		var raw, env time.Duration
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			t0 := time.Now()
			for i := range chunks {
				nonce[0] = byte(i)
				var err error
				if dst, err = aead.Open(dst[:0], nonce, sealed[i], nil); err != nil {
					b.Fatal(err)
				}
			}
			t1 := time.Now()
			s, _ := r.Stream(context.Background(), 0, st)
			if _, err := io.Copy(io.Discard, s); err != nil {
				b.Fatal(err)
			}
			raw, env = raw+t1.Sub(t0), env+time.Since(t1)
		}
		b.ReportMetric(float64(raw)/float64(env), "x-raw")
	})
}
