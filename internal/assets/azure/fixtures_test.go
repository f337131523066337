package azure

import (
	"io"
	"strconv"
	"testing"

	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/assets/assetstest"
)

// TestConformance holds the adapter to the suite the in-memory store
// passes, against Azurite, with pages and batches small enough that
// listings span pages and large files go in staged blocks.
func TestConformance(t *testing.T) {
	assetstest.Run(t, func(t *testing.T) assets.Store {
		return newTestStore(t, &Options{RecordPageSize: 2, FilePageSize: 2, BatchSize: 3, BlockSize: 64 << 10})
	})
}

// The fixtures and helpers the adapter's own tests share with the suite.
type testFile = assetstest.TestFile

func newTestFile(f assets.File, content []byte) testFile {
	return testFile{File: f, Content: content}
}

func edgeRecord(key string) assets.Record { return assetstest.EdgeRecord(key) }
func sameFile(a, b assets.File) bool      { return assetstest.SameFile(a, b) }
func keysOf(rs []assets.Record) []string  { return assetstest.KeysOf(rs) }

func encodeSample(t testing.TB, recs []assets.Record, files []testFile) []byte {
	return assetstest.EncodeSample(t, recs, files)
}

func collect[T any](t testing.TB, seq func(func(T, error) bool)) []T {
	t.Helper()
	return assetstest.Collect(t, seq)
}

func putRecords(t testing.TB, s *Store, tenant string, recs ...assets.Record) {
	t.Helper()
	assetstest.PutRecords(t, s, tenant, recs...)
}

func putFiles(t testing.TB, s *Store, tenant string, files ...testFile) {
	t.Helper()
	assetstest.PutFiles(t, s, tenant, files...)
}

func readFiles(t testing.TB, s *Store, tenant string) []testFile {
	t.Helper()
	return assetstest.ReadFiles(t, s, tenant)
}

func restoreStream(t testing.TB, s *Store, r io.Reader, tenant string, replace bool) assets.Counts {
	t.Helper()
	return assetstest.RestoreStream(t, s, r, tenant, replace)
}

const mib = 1 << 20

func byteSize(n int64) string { return "size=" + strconv.FormatInt(n/mib, 10) + "MiB" }
