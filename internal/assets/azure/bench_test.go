package azure

import (
	"context"
	"io"
	"runtime"
	"testing"

	"github.com/twinit/byok-backup/internal/assets"
)

// allocPerMiB reports heap bytes allocated per MiB of file content: the
// streaming claim is that this stays flat as files grow.
func allocPerMiB(b *testing.B, size int64, f func()) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.SetBytes(size)
	for b.Loop() {
		f()
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(int64(b.N)*size/mib), "B/MiB")
}

// BenchmarkFileAzurite uploads a file in staged blocks and streams it back
// (Azurite, so throughput is Azurite's; the metric of interest is B/MiB).
func BenchmarkFileAzurite(b *testing.B) {
	for _, size := range []int64{2 * mib, 16 * mib} {
		b.Run(byteSize(size), func(b *testing.B) {
			s := newTestStore(b, &Options{BlockSize: mib, UploadConcurrency: 2})
			ctx := context.Background()
			f := assets.File{Path: "big", Size: size, ContentType: "application/octet-stream"}
			allocPerMiB(b, size, func() {
				if err := s.PutFile(ctx, "t1", f, &prngReader{r: newRand(2)}); err != nil {
					b.Fatal(err)
				}
				rc, err := s.OpenFile(ctx, "t1", f)
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, rc); err != nil || n != size {
					b.Fatal(n, err)
				}
				rc.Close()
			})
		})
	}
}
