package azure

import (
	"strconv"
	"testing"

	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/assets/assetstest"
)

// The fixtures the codec's tests use, shared through assetstest.
type testFile = assetstest.TestFile

func edgeRecord(key string) assets.Record { return assetstest.EdgeRecord(key) }
func sampleFiles() []testFile             { return assetstest.SampleFiles() }
func sameFile(a, b assets.File) bool      { return assetstest.SameFile(a, b) }
func encodeSample(t testing.TB, recs []assets.Record, files []testFile) []byte {
	return assetstest.EncodeSample(t, recs, files)
}

const mib = 1 << 20

func byteSize(n int64) string { return "size=" + strconv.FormatInt(n/mib, 10) + "MiB" }

func newTestFile(f assets.File, content []byte) testFile {
	return testFile{File: f, Content: content}
}
