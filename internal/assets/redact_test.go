package assets

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

// TestErrorsNameNoTenantData: validation and encoding errors (table
// parsing errors: assets/azure) name items by position or hash, never by their id, path,
// property name or value (they end up in logs).
func TestErrorsNameNoTenantData(t *testing.T) {
	const m = "Zq9LeakMark"
	enc := func(write func(e *Encoder) error) error { return write(NewEncoder(io.Discard)) }
	str := func(name, v string) Property { return Property{Name: name, Type: TypeString, Value: v} }
	for name, err := range map[string]error{
		"system property name": Record{RowKey: "k" + m, Properties: []Property{str("RowKey", m)}}.Validate(),
		"annotation name":      Record{RowKey: "k" + m, Properties: []Property{str("odata."+m, m)}}.Validate(),
		"properties out of order": Record{RowKey: "k" + m,
			Properties: []Property{str("b"+m, m), str("a"+m, m)}}.Validate(),
		"bad GUID":         Record{RowKey: "k" + m, Properties: []Property{{Name: "g" + m, Type: TypeGUID, Value: "x" + m}}}.Validate(),
		"local date time":  Record{RowKey: "k" + m, Properties: []Property{{Name: "d" + m, Type: TypeDateTime, Value: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone(m, 3600))}}}.Validate(),
		"content property": File{Path: m, ContentType: "\x01" + m}.Validate(),
		"metadata name":    File{Path: m, Metadata: map[string]string{"bad-" + m: m}}.Validate(),
		"records out of order": enc(func(e *Encoder) error {
			if err := e.WriteRecord(Record{RowKey: "b" + m}); err != nil {
				return err
			}
			return e.WriteRecord(Record{RowKey: "a" + m})
		}),
		"invalid record": enc(func(e *Encoder) error {
			return e.WriteRecord(Record{RowKey: "k" + m, Properties: []Property{str("odata."+m, m)}})
		}),
		"short file": enc(func(e *Encoder) error {
			return e.WriteFile(File{Path: m, Size: 100}, strings.NewReader(m))
		}),
		"long file": enc(func(e *Encoder) error {
			return e.WriteFile(File{Path: m, Size: 1}, strings.NewReader(m))
		}),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if strings.Contains(strings.ToLower(err.Error()), strings.ToLower(m)) {
			t.Errorf("%s: error names tenant data: %v", name, err)
		}
	}
	// The decoder's order check, on a stream the encoder was tricked into
	// writing out of order.
	var b bytes.Buffer
	e := NewEncoder(&b)
	for _, k := range []string{"b" + m, "a" + m} {
		e.haveLast = false
		if err := e.WriteRecord(Record{RowKey: k}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	d := NewDecoder(&b)
	var err error
	for err == nil {
		_, err = d.Next()
	}
	if err == io.EOF || strings.Contains(err.Error(), m) {
		t.Fatalf("decoder error = %v", err)
	}
}
