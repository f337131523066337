package assets

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/twinit/byok-backup/internal/errcode"
)

// edgeRecord has every EDM type with edge values.
func edgeRecord(key string) Record {
	r := Record{RowKey: key, Properties: []Property{
		{Name: "s", Type: TypeString, Value: "héllo 😀 \"q\" <&>"},
		{Name: "empty", Type: TypeString, Value: ""},
		{Name: "i32max", Type: TypeInt32, Value: int32(math.MaxInt32)},
		{Name: "i32min", Type: TypeInt32, Value: int32(math.MinInt32)},
		{Name: "i64max", Type: TypeInt64, Value: int64(math.MaxInt64)},
		{Name: "i64min", Type: TypeInt64, Value: int64(math.MinInt64)},
		{Name: "dwhole", Type: TypeDouble, Value: 3.0},
		{Name: "dbig", Type: TypeDouble, Value: 1e20},
		{Name: "dmax", Type: TypeDouble, Value: math.MaxFloat64},
		{Name: "dtiny", Type: TypeDouble, Value: 5e-324},
		{Name: "dfrac", Type: TypeDouble, Value: -1.5},
		{Name: "dnan", Type: TypeDouble, Value: math.NaN()},
		{Name: "dinf", Type: TypeDouble, Value: math.Inf(1)},
		{Name: "dninf", Type: TypeDouble, Value: math.Inf(-1)},
		{Name: "btrue", Type: TypeBoolean, Value: true},
		{Name: "bfalse", Type: TypeBoolean, Value: false},
		{Name: "dt", Type: TypeDateTime, Value: time.Date(2024, 2, 29, 23, 59, 59, 123456700, time.UTC)},
		{Name: "dtmin", Type: TypeDateTime, Value: time.Date(1601, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Name: "dtmax", Type: TypeDateTime, Value: time.Date(9999, 12, 31, 23, 59, 59, 999999900, time.UTC)},
		{Name: "guid", Type: TypeGUID, Value: "c56a4180-65aa-42ec-a945-5fd21dec0538"},
		{Name: "GUIDUPPER", Type: TypeGUID, Value: "C56A4180-65AA-42EC-A945-5FD21DEC0538"},
		{Name: "bin", Type: TypeBinary, Value: []byte{0, 1, 2, 0xff}},
		{Name: "binempty", Type: TypeBinary, Value: []byte{}},
		{Name: "unicodé名前", Type: TypeString, Value: "値"},
	}}
	r.SortProperties()
	return r
}

type testFile struct {
	File
	content []byte
}

func sampleFiles() []testFile {
	return []testFile{
		{File{Path: "a.txt", Size: 5, ContentType: "text/plain", Metadata: map[string]string{"owner": "x", "a": ""}}, []byte("hello")},
		{File{Path: "dir/empty", Size: 0, ContentType: "application/octet-stream"}, nil},
		{File{Path: "dir/sub/ü.bin", Size: 3, ContentType: "application/x-tar", ContentEncoding: "gzip", ContentLanguage: "de",
			ContentDisposition: "inline", CacheControl: "no-cache"}, []byte{1, 2, 3}},
	}
}

// encodeSample encodes records then files into one stream.
func encodeSample(t testing.TB, recs []Record, files []testFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	e := NewEncoder(&buf)
	for _, r := range recs {
		if err := e.WriteRecord(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		if err := e.WriteFile(f.File, bytes.NewReader(f.content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// decodeAll reads a whole stream, content included.
func decodeAll(r io.Reader) ([]Record, []testFile, Counts, error) {
	d := NewDecoder(r)
	var recs []Record
	var files []testFile
	for {
		k, err := d.Next()
		if errors.Is(err, io.EOF) {
			return recs, files, d.Counts(), nil
		}
		if err != nil {
			return recs, files, d.Counts(), err
		}
		switch k {
		case KindRecord:
			recs = append(recs, d.Record())
		case KindFile:
			b, err := io.ReadAll(d.Content())
			if err != nil {
				return recs, files, d.Counts(), err
			}
			files = append(files, testFile{d.File(), b})
		}
	}
}

func TestCodecRoundTrip(t *testing.T) {
	recs := []Record{edgeRecord(""), edgeRecord("a"), edgeRecord("b/ü"), {RowKey: "no-props"}}
	files := sampleFiles()
	data := encodeSample(t, recs, files)
	got, gotFiles, counts, err := decodeAll(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("%d records, want %d", len(got), len(recs))
	}
	for i := range recs {
		if !recs[i].Equal(got[i]) {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, got[i], recs[i])
		}
	}
	if len(gotFiles) != len(files) {
		t.Fatalf("%d files, want %d", len(gotFiles), len(files))
	}
	for i, f := range files {
		g := gotFiles[i]
		if !sameFile(f.File, g.File) || !bytes.Equal(f.content, g.content) {
			t.Errorf("file %d: got %+v %q, want %+v %q", i, g.File, g.content, f.File, f.content)
		}
	}
	want := Counts{Records: 4, Files: 3, Bytes: 8}
	if counts != want {
		t.Errorf("counts %+v, want %+v", counts, want)
	}
	// Deterministic: the same data encodes to the same bytes, whatever
	// the map order of metadata.
	if again := encodeSample(t, recs, files); !bytes.Equal(again, data) {
		t.Error("same data encoded to different bytes")
	}
	// Reading one byte at a time and with errors on the way still works.
	if _, _, _, err := decodeAll(iotest.OneByteReader(bytes.NewReader(data))); err != nil {
		t.Errorf("one byte reader: %v", err)
	}
	if _, _, _, err := decodeAll(iotest.DataErrReader(bytes.NewReader(data))); err != nil {
		t.Errorf("data err reader: %v", err)
	}
}

func sameFile(a, b File) bool {
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

func TestContentReaderIsAReader(t *testing.T) {
	content := bytes.Repeat([]byte("0123456789"), 10000)
	data := encodeSample(t, nil, []testFile{{File{Path: "x", Size: int64(len(content))}, content}})
	d := NewDecoder(bytes.NewReader(data))
	if k, err := d.Next(); err != nil || k != KindFile {
		t.Fatalf("Next = %v, %v", k, err)
	}
	if err := iotest.TestReader(d.Content(), content); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeSkipsUnreadContent(t *testing.T) {
	data := encodeSample(t, nil, sampleFiles())
	d := NewDecoder(bytes.NewReader(data))
	n := 0
	for {
		_, err := d.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 3 || d.Counts().Bytes != 8 {
		t.Fatalf("%d files, counts %+v", n, d.Counts())
	}
}

// TestDecodeRejectsTampering: each change to a valid stream fails with a
// FormatError coded IntegrityCheckFailed, never a panic or silent success.
func TestDecodeRejectsTampering(t *testing.T) {
	good := encodeSample(t, []Record{edgeRecord("a"), edgeRecord("b")}, sampleFiles())
	cases := map[string][]byte{
		"empty":          {},
		"bad magic":      append([]byte("XWAS"), good[4:]...),
		"bad version":    append(append([]byte("TWAS"), 2), good[5:]...),
		"truncated":      good[:len(good)/2],
		"no end frame":   good[:len(good)-4],
		"trailing byte":  append(bytes.Clone(good), 0),
		"doubled stream": append(bytes.Clone(good), good...),
		"unknown tag":    append(append([]byte("TWAS\x01"), 'X'), good[6:]...),
	}
	// A lying end frame: one more record than present.
	lie := bytes.Clone(good)
	lie[len(lie)-3]++
	cases["wrong counts"] = lie
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, _, err := decodeAll(bytes.NewReader(data))
			var fe *FormatError
			if !errors.As(err, &fe) || errcode.CodeOf(err) != errcode.IntegrityCheckFailed {
				t.Fatalf("err = %v, want a FormatError with IntegrityCheckFailed", err)
			}
		})
	}
	// Every single flipped byte is caught: a structural error, or a
	// different decoded result (content bytes are the envelope's job).
	want, wantFiles, _, _ := decodeAll(bytes.NewReader(good))
	for i := range good {
		bad := bytes.Clone(good)
		bad[i] ^= 0x01
		got, gotFiles, _, err := decodeAll(bytes.NewReader(bad))
		if err == nil && sameDecoded(want, wantFiles, got, gotFiles) {
			t.Errorf("flipping byte %d went unnoticed", i)
		}
	}
}

func sameDecoded(a []Record, af []testFile, b []Record, bf []testFile) bool {
	if len(a) != len(b) || len(af) != len(bf) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	for i := range af {
		if !sameFile(af[i].File, bf[i].File) || !bytes.Equal(af[i].content, bf[i].content) {
			return false
		}
	}
	return true
}

func TestDecodePassesReaderErrorsThrough(t *testing.T) {
	good := encodeSample(t, []Record{edgeRecord("a")}, sampleFiles())
	authErr := errcode.New(errcode.IntegrityCheckFailed, "envelope says no")
	r := io.MultiReader(bytes.NewReader(good[:20]), iotest.ErrReader(authErr))
	_, _, _, err := decodeAll(r)
	if !errors.Is(err, authErr) {
		t.Fatalf("err = %v, want the reader's error", err)
	}
	var fe *FormatError
	if errors.As(err, &fe) {
		t.Fatal("a reader error was reported as a format error")
	}
}

func TestEncoderEnforcesOrderAndSizes(t *testing.T) {
	cases := map[string]func(e *Encoder) error{
		"record keys descend": func(e *Encoder) error {
			e.WriteRecord(Record{RowKey: "b"})
			return e.WriteRecord(Record{RowKey: "a"})
		},
		"record key repeated": func(e *Encoder) error {
			e.WriteRecord(Record{RowKey: "a"})
			return e.WriteRecord(Record{RowKey: "a"})
		},
		"record after file": func(e *Encoder) error {
			e.WriteFile(File{Path: "a"}, strings.NewReader(""))
			return e.WriteRecord(Record{RowKey: "z"})
		},
		"paths descend": func(e *Encoder) error {
			e.WriteFile(File{Path: "b"}, strings.NewReader(""))
			return e.WriteFile(File{Path: "a"}, strings.NewReader(""))
		},
		"short content": func(e *Encoder) error {
			return e.WriteFile(File{Path: "a", Size: 5}, strings.NewReader("abc"))
		},
		"long content": func(e *Encoder) error {
			return e.WriteFile(File{Path: "a", Size: 2}, strings.NewReader("abc"))
		},
		"properties unsorted": func(e *Encoder) error {
			return e.WriteRecord(Record{RowKey: "a", Properties: []Property{
				{Name: "b", Type: TypeBoolean, Value: true}, {Name: "a", Type: TypeBoolean, Value: true}}})
		},
		"type mismatch": func(e *Encoder) error {
			return e.WriteRecord(Record{RowKey: "a", Properties: []Property{{Name: "n", Type: TypeInt64, Value: int32(1)}}})
		},
		"system property": func(e *Encoder) error {
			return e.WriteRecord(Record{RowKey: "a", Properties: []Property{{Name: "Timestamp", Type: TypeString, Value: ""}}})
		},
		"bad guid": func(e *Encoder) error {
			return e.WriteRecord(Record{RowKey: "a", Properties: []Property{{Name: "g", Type: TypeGUID, Value: "nope"}}})
		},
		"write after close": func(e *Encoder) error {
			e.Close()
			return e.WriteRecord(Record{RowKey: "a"})
		},
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			e := NewEncoder(io.Discard)
			if err := f(e); err == nil {
				t.Fatal("no error")
			}
			if err := e.Close(); err == nil && name != "write after close" {
				t.Fatal("Close succeeded after an error: the error must be sticky")
			}
		})
	}
	if err := (func() error {
		e := NewEncoder(io.Discard)
		e.WriteRecord(Record{RowKey: "b"})
		return e.WriteRecord(Record{RowKey: "a"})
	})(); !errors.Is(err, ErrOutOfOrder) {
		t.Errorf("descending keys: %v, want ErrOutOfOrder", err)
	}
}

func TestCompareKeys(t *testing.T) {
	// Ascending in UTF-16 code unit order: supplementary characters
	// (surrogates D800–DFFF) sort before U+E000–U+FFFF, unlike byte order.
	asc := []string{"", "A", "Z", "a", "a-b", "a/", "ab", "é", "€", "😀", "😁", "\uffff"}
	for i := range asc {
		for j := range asc {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := CompareKeys(asc[i], asc[j]); got != want {
				t.Errorf("CompareKeys(%q, %q) = %d, want %d", asc[i], asc[j], got, want)
			}
		}
	}
}
