// Package storetest is the conformance suite every [blobstore.Store] must
// pass (restic's backend/test pattern): the in-memory store and the Azure
// adapter against Azurite run the same tests.
package storetest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/blobstore"
	"github.com/twinit/byok-backup/internal/catalog"
)

// Run runs the suite. open may return the same store every time: each test
// works under its own random prefix.
func Run(t *testing.T, open func(t *testing.T) blobstore.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s blobstore.Store, prefix string)
	}{
		{"PutGet", testPutGet},
		{"Overwrite", testOverwrite},
		{"GetNotFound", testGetNotFound},
		{"GetInto", testGetInto},
		{"GetIntoLimit", testGetIntoLimit},
		{"ListOrderAndPrefix", testList},
		{"ListStopsOnError", testListStops},
		{"DeletePrefix", testDeletePrefix},
		{"Layout", testLayout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t), randomPrefix()) })
	}
}

func randomPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:]) + "/"
}

func random(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func testPutGet(t *testing.T, s blobstore.Store, p string) {
	for _, n := range []int{0, 1, 4096 + 1, 256 << 10} {
		t.Run(fmt.Sprintf("len=%d", n), func(t *testing.T) {
			name := fmt.Sprintf("%sblob-%d", p, n)
			data := random(n)
			if err := s.PutBlob(t.Context(), name, data); err != nil {
				t.Fatal(err)
			}
			data2 := slices.Clone(data)
			if n > 0 {
				data[0] ^= 0xff // the store must not keep the caller's slice
			}
			got, err := s.GetBlob(t.Context(), name)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data2) {
				t.Fatalf("read %d bytes, differing from the %d written", len(got), n)
			}
		})
	}
}

func testOverwrite(t *testing.T, s blobstore.Store, p string) {
	name := p + "x"
	for _, v := range [][]byte{[]byte("first"), []byte("second, longer")} {
		if err := s.PutBlob(t.Context(), name, v); err != nil {
			t.Fatalf("put %q: %v", v, err)
		}
	}
	got, err := s.GetBlob(t.Context(), name)
	if err != nil || string(got) != "second, longer" {
		t.Fatalf("after overwrite: %q, %v", got, err)
	}
}

func testGetNotFound(t *testing.T, s blobstore.Store, p string) {
	_, err := s.GetBlob(t.Context(), p+"missing")
	if !blobstore.IsNotExist(err) || blobstore.IsTransient(err) {
		t.Fatalf("Get of a missing blob: %v; want ErrNotFound, not transient", err)
	}
}

func testList(t *testing.T, s blobstore.Store, p string) {
	var want []blobstore.Info
	for i := 11; i >= 0; i-- { // written out of order
		name := fmt.Sprintf("%sb/chunks/records/%010d", p, i)
		if err := s.PutBlob(t.Context(), name, random(i)); err != nil {
			t.Fatal(err)
		}
		want = append([]blobstore.Info{{Name: name, Size: int64(i)}}, want...)
	}
	for _, other := range []string{p + "bc/x", p + "a", p + "b"} {
		if err := s.PutBlob(t.Context(), other, []byte("o")); err != nil {
			t.Fatal(err)
		}
	}
	var got []blobstore.Info
	if err := s.List(t.Context(), p+"b/", func(i blobstore.Info) error {
		got = append(got, i)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("List(%q):\n got %v\nwant %v", p+"b/", got, want)
	}
	n := 0
	if err := s.List(t.Context(), p+"nothing/", func(blobstore.Info) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("empty prefix listed %d, %v", n, err)
	}
}

var errStop = errors.New("stop")

func testListStops(t *testing.T, s blobstore.Store, p string) {
	for i := range 3 {
		if err := s.PutBlob(t.Context(), fmt.Sprintf("%s%d", p, i), nil); err != nil {
			t.Fatal(err)
		}
	}
	calls := 0
	err := s.List(t.Context(), p, func(blobstore.Info) error { calls++; return errStop })
	if !errors.Is(err, errStop) || calls != 1 {
		t.Fatalf("List returned %v after %d calls; want errStop after 1", err, calls)
	}
}

func testDeletePrefix(t *testing.T, s blobstore.Store, p string) {
	for _, name := range []string{"gone/1", "gone/2", "gone/sub/3", "gonex/keep", "keep"} {
		if err := s.PutBlob(t.Context(), p+name, []byte(name)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.DeletePrefix(t.Context(), p+"gone/")
	if err != nil || n != 3 {
		t.Fatalf("DeletePrefix: %d, %v; want 3", n, err)
	}
	var left []string
	if err := s.List(t.Context(), p, func(i blobstore.Info) error { left = append(left, i.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(left, []string{p + "gonex/keep", p + "keep"}) {
		t.Fatalf("left after delete: %v", left)
	}
	if _, err := s.GetBlob(t.Context(), p+"gone/1"); !blobstore.IsNotExist(err) {
		t.Fatalf("deleted blob still readable: %v", err)
	}
	if n, err := s.DeletePrefix(t.Context(), p+"gone/"); err != nil || n != 0 {
		t.Fatalf("second DeletePrefix: %d, %v; want 0, nil", n, err)
	}
}

// testLayout stores a whole backup by Layout names and checks that an
// abandoned attempt is removed without touching the committed one.
func testLayout(t *testing.T, s blobstore.Store, p string) {
	tenant := p[:len(p)-1]
	id := catalog.NewID(time.Now())
	committed, err := blobstore.NewLayout(tenant, id, "a2")
	if err != nil {
		t.Fatal(err)
	}
	abandoned, _ := blobstore.NewLayout(tenant, id, "a1")
	for _, l := range []blobstore.Layout{abandoned, committed} {
		for i := range int64(3) {
			if err := s.PutBlob(t.Context(), l.Chunk("records", i), []byte{byte(i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.PutBlob(t.Context(), committed.Manifest(), []byte("m")); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeletePrefix(t.Context(), abandoned.Prefix()); err != nil || n != 3 {
		t.Fatalf("deleting the abandoned attempt: %d, %v", n, err)
	}
	var idx []byte
	if err := s.List(t.Context(), committed.ChunkPrefix("records"), func(i blobstore.Info) error {
		b, err := s.GetBlob(t.Context(), i.Name)
		idx = append(idx, b...)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(idx, []byte{0, 1, 2}) {
		t.Fatalf("committed chunks in listing order: %v", idx)
	}
	if n, err := s.DeletePrefix(t.Context(), committed.BackupPrefix()); err != nil || n != 4 {
		t.Fatalf("deleting the whole backup: %d, %v; want 4", n, err)
	}
}

// testGetInto: GetInto returns exactly the blob whether buf is nil, too
// small, exact or larger, reuses buf when the blob fits (when the store
// implements IntoGetter), and reports a missing blob as ErrNotFound.
func testGetInto(t *testing.T, s blobstore.Store, p string) {
	_, into := s.(blobstore.IntoGetter)
	for _, n := range []int{0, 1, 4096 + 1, 256 << 10} {
		name := fmt.Sprintf("%sinto-%d", p, n)
		data := random(n)
		if err := s.PutBlob(t.Context(), name, data); err != nil {
			t.Fatal(err)
		}
		for _, c := range []int{0, n / 2, n, n + 100} {
			buf := bytes.Repeat([]byte{0xAA}, c)
			got, err := blobstore.GetInto(t.Context(), s, name, buf, int64(n))
			if err != nil {
				t.Fatalf("len %d cap %d: %v", n, c, err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("len %d cap %d: read %d bytes that differ", n, c, len(got))
			}
			if into && n > 0 && c >= n && &got[0] != &buf[0] {
				t.Fatalf("len %d cap %d: buffer not reused", n, c)
			}
		}
	}
	if _, err := blobstore.GetInto(t.Context(), s, p+"missing", make([]byte, 10), 10); !blobstore.IsNotExist(err) {
		t.Fatalf("missing blob: %v, want ErrNotFound", err)
	}
}

// testGetIntoLimit: a blob even one byte over the reader's limit is
// ErrTooLarge (permanent, not "not found"), whatever the buffer; at the
// limit it is read.
func testGetIntoLimit(t *testing.T, s blobstore.Store, p string) {
	for _, n := range []int{1, 4096 + 1, 256 << 10} {
		name := fmt.Sprintf("%slimit-%d", p, n)
		data := random(n)
		if err := s.PutBlob(t.Context(), name, data); err != nil {
			t.Fatal(err)
		}
		for _, c := range []int{0, n + 100} {
			buf := bytes.Repeat([]byte{0xAA}, c)
			_, err := blobstore.GetInto(t.Context(), s, name, buf, int64(n-1))
			if !blobstore.IsTooLarge(err) || blobstore.IsTransient(err) || blobstore.IsNotExist(err) {
				t.Fatalf("len %d, limit %d: %v; want only ErrTooLarge", n, n-1, err)
			}
		}
		got, err := blobstore.GetInto(t.Context(), s, name, nil, int64(n))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("len %d at its limit: %d bytes, %v", n, len(got), err)
		}
	}
	if err := s.PutBlob(t.Context(), p+"empty", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := blobstore.GetInto(t.Context(), s, p+"empty", nil, 0); err != nil || len(got) != 0 {
		t.Fatalf("empty blob with limit 0: %d bytes, %v", len(got), err)
	}
}
