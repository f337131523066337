package assets

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/twinit/byok-backup/internal/errcode"
)

// fuzzDecode checks the decoder's contract on arbitrary bytes: no panic;
// every failure is either a coded FormatError; and what decodes
// successfully re-encodes to exactly the same bytes (the format is
// canonical, so nothing is accepted that the encoder wouldn't write).
func fuzzDecode(t *testing.T, data []byte) {
	recs, files, counts, err := decodeAll(bytes.NewReader(data))
	if err != nil {
		var fe *FormatError
		if !errors.As(err, &fe) || errcode.CodeOf(err) != errcode.IntegrityCheckFailed {
			t.Fatalf("error is not a coded FormatError: %v", err)
		}
		return
	}
	var buf bytes.Buffer
	e := NewEncoder(&buf)
	for _, r := range recs {
		if err := e.WriteRecord(r); err != nil {
			t.Fatalf("decoded record doesn't re-encode: %v", err)
		}
	}
	for _, f := range files {
		if err := e.WriteFile(f.File, bytes.NewReader(f.content)); err != nil {
			t.Fatalf("decoded file doesn't re-encode: %v", err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("accepted a non-canonical stream:\n in %x\nout %x", data, buf.Bytes())
	}
	if e.Counts() != counts {
		t.Fatalf("counts %+v, re-encoded %+v", counts, e.Counts())
	}
}

func FuzzDecodeRecords(f *testing.F) {
	f.Add(encodeSample(f, nil, nil))
	f.Add(encodeSample(f, []Record{edgeRecord("a")}, nil))
	f.Add(encodeSample(f, []Record{{RowKey: ""}, {RowKey: "😀"}, edgeRecord("\uffff")}, nil))
	one := Record{RowKey: "k", Properties: []Property{{Name: "b", Type: TypeBoolean, Value: true}}}
	f.Add(encodeSample(f, []Record{one}, nil))
	f.Fuzz(fuzzDecode)
}

func FuzzDecodeFiles(f *testing.F) {
	f.Add(encodeSample(f, nil, sampleFiles()))
	f.Add(encodeSample(f, []Record{{RowKey: "r"}}, sampleFiles()[:1]))
	f.Add(encodeSample(f, nil, []testFile{{File{Path: "", Size: 1, Metadata: map[string]string{"k": "v"}}, []byte{7}}}))
	f.Fuzz(fuzzDecode)
}

var _ io.Reader = contentReader{}
