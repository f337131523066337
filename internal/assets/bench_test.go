package assets

import (
	"io"
	"runtime"
	"testing"
)

const mib = 1 << 20

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

// BenchmarkCodecFile encodes a file into the stream and decodes it back,
// through a pipe, never holding the file.
func BenchmarkCodecFile(b *testing.B) {
	for _, size := range []int64{4 * mib, 64 * mib} {
		b.Run(byteSize(size), func(b *testing.B) {
			allocPerMiB(b, size, func() {
				pr, pw := io.Pipe()
				go func() {
					e := NewEncoder(pw)
					e.WriteFile(File{Path: "big", Size: size}, io.LimitReader(&prngReader{r: newRand(1)}, size))
					pw.CloseWithError(e.Close())
				}()
				d := NewDecoder(pr)
				if _, err := d.Next(); err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, d.Content()); err != nil || n != size {
					b.Fatal(n, err)
				}
				if _, err := d.Next(); err != io.EOF {
					b.Fatal(err)
				}
			})
		})
	}
}

func byteSize(n int64) string {
	return "size=" + itoa(n/mib) + "MiB"
}

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
