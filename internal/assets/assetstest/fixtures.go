// Package assetstest is the conformance suite every assets store must pass
// (restic's backend/test pattern): the Azure adapter against Azurite and the
// in-memory store (assets/mem) run the same tests, so that services tested
// on the in-memory store meet what they would against Azure. It also holds
// the fixtures those tests share.
package assetstest

import (
	"bytes"
	"errors"
	"io"
	"math"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/assets"
)

// EdgeRecord has every EDM type with edge values.
func EdgeRecord(key string) assets.Record {
	r := assets.Record{RowKey: key, Properties: []assets.Property{
		{Name: "s", Type: assets.TypeString, Value: "héllo 😀 \"q\" <&>"},
		{Name: "empty", Type: assets.TypeString, Value: ""},
		{Name: "i32max", Type: assets.TypeInt32, Value: int32(math.MaxInt32)},
		{Name: "i32min", Type: assets.TypeInt32, Value: int32(math.MinInt32)},
		{Name: "i64max", Type: assets.TypeInt64, Value: int64(math.MaxInt64)},
		{Name: "i64min", Type: assets.TypeInt64, Value: int64(math.MinInt64)},
		{Name: "dwhole", Type: assets.TypeDouble, Value: 3.0},
		{Name: "dbig", Type: assets.TypeDouble, Value: 1e20},
		{Name: "dmax", Type: assets.TypeDouble, Value: math.MaxFloat64},
		{Name: "dtiny", Type: assets.TypeDouble, Value: 5e-324},
		{Name: "dfrac", Type: assets.TypeDouble, Value: -1.5},
		{Name: "dnan", Type: assets.TypeDouble, Value: math.NaN()},
		{Name: "dinf", Type: assets.TypeDouble, Value: math.Inf(1)},
		{Name: "dninf", Type: assets.TypeDouble, Value: math.Inf(-1)},
		{Name: "btrue", Type: assets.TypeBoolean, Value: true},
		{Name: "bfalse", Type: assets.TypeBoolean, Value: false},
		{Name: "dt", Type: assets.TypeDateTime, Value: time.Date(2024, 2, 29, 23, 59, 59, 123456700, time.UTC)},
		{Name: "dtmin", Type: assets.TypeDateTime, Value: time.Date(1601, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Name: "dtmax", Type: assets.TypeDateTime, Value: time.Date(9999, 12, 31, 23, 59, 59, 999999900, time.UTC)},
		{Name: "guid", Type: assets.TypeGUID, Value: "c56a4180-65aa-42ec-a945-5fd21dec0538"},
		{Name: "GUIDUPPER", Type: assets.TypeGUID, Value: "C56A4180-65AA-42EC-A945-5FD21DEC0538"},
		{Name: "bin", Type: assets.TypeBinary, Value: []byte{0, 1, 2, 0xff}},
		{Name: "binempty", Type: assets.TypeBinary, Value: []byte{}},
		{Name: "unicodé名前", Type: assets.TypeString, Value: "値"},
	}}
	r.SortProperties()
	return r
}

// TestFile is a file and its content.
type TestFile struct {
	assets.File
	Content []byte
}

// SampleFiles are files with every content property set somewhere.
func SampleFiles() []TestFile {
	return []TestFile{
		{assets.File{Path: "a.txt", Size: 5, ContentType: "text/plain", Metadata: map[string]string{"owner": "x", "a": ""}}, []byte("hello")},
		{assets.File{Path: "dir/empty", Size: 0, ContentType: "application/octet-stream"}, nil},
		{assets.File{Path: "dir/sub/ü.bin", Size: 3, ContentType: "application/x-tar", ContentEncoding: "gzip", ContentLanguage: "de",
			ContentDisposition: "inline", CacheControl: "no-cache"}, []byte{1, 2, 3}},
	}
}

// EncodeSample encodes records then files into one stream.
func EncodeSample(t testing.TB, recs []assets.Record, files []TestFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	e := assets.NewEncoder(&buf)
	for _, r := range recs {
		if err := e.WriteRecord(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		if err := e.WriteFile(f.File, bytes.NewReader(f.Content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// DecodeAll reads a whole stream, content included.
func DecodeAll(r io.Reader) ([]assets.Record, []TestFile, assets.Counts, error) {
	d := assets.NewDecoder(r)
	var recs []assets.Record
	var files []TestFile
	for {
		k, err := d.Next()
		if errors.Is(err, io.EOF) {
			return recs, files, d.Counts(), nil
		}
		if err != nil {
			return recs, files, d.Counts(), err
		}
		switch k {
		case assets.KindRecord:
			recs = append(recs, d.Record())
		case assets.KindFile:
			b, err := io.ReadAll(d.Content())
			if err != nil {
				return recs, files, d.Counts(), err
			}
			files = append(files, TestFile{d.File(), b})
		}
	}
}

// SameFile reports whether a and b are the same file, ETag aside.
func SameFile(a, b assets.File) bool {
	if a.Path != b.Path || a.Size != b.Size || a.ContentType != b.ContentType || a.ContentEncoding != b.ContentEncoding ||
		a.ContentLanguage != b.ContentLanguage || a.ContentDisposition != b.ContentDisposition ||
		a.CacheControl != b.CacheControl || len(a.Metadata) != len(b.Metadata) {
		return false
	}
	for k, v := range a.Metadata {
		if w, ok := b.Metadata[k]; !ok || w != v {
			return false
		}
	}
	return true
}
