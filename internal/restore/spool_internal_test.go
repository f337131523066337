package restore

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/twinit/byok-backup/internal/blobstore"
	"io"
	"testing"

	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/errcode"
)

// TestSpoolFileHeaders: headers come back in order, exactly, as often as
// asked; the file on disk holds no header in clear; a byte changed on disk
// fails the read; headers beyond the limit fail with Conflict.
func TestSpoolFileHeaders(t *testing.T) {
	plain := make([]byte, 64*5)
	_, m, _ := sealed(t, plain)
	sp, err := newSpool(t.TempDir(), m, 1<<20, newChunkPool(int(m.ChunkSize)+16, 4))
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	var want []stagedFile
	for i := range 50 {
		sf := stagedFile{f: assets.File{Path: fmt.Sprintf("dir/secret-%02d.bin", i), Size: int64(i), ContentType: "text/plain",
			Metadata: map[string]string{"owner": "x\x00\"<y>"}}, blocks: uint32(i)}
		if err := sp.putFile(sf); err != nil {
			t.Fatal(err)
		}
		want = append(want, sf)
	}
	for range 2 {
		hr, err := sp.files()
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			sf, err := hr.next()
			if err == io.EOF {
				if i != len(want) {
					t.Fatalf("%d headers back, want %d", i, len(want))
				}
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(sf) != fmt.Sprint(want[i]) {
				t.Fatalf("header %d: %+v, want %+v", i, sf, want[i])
			}
		}
	}
	raw := make([]byte, sp.hsize)
	if _, err := sp.hf.ReadAt(raw, 0); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("secret")) {
		t.Fatal("a file path is in clear in the spool")
	}
	raw[len(raw)/2] ^= 1
	if _, err := sp.hf.WriteAt(raw, 0); err != nil {
		t.Fatal(err)
	}
	hr, _ := sp.files()
	for {
		_, err := hr.next()
		if errors.Is(err, errSpoolCorrupt) {
			break
		}
		if err != nil {
			t.Fatalf("altered spool: %v", err)
		}
	}

	info, _ := m.Stream(blobstore.StreamRecords)
	small, err := newSpool(t.TempDir(), m, int64(info.CiphertextSize)+100, newChunkPool(int(m.ChunkSize)+16, 4))
	if err != nil {
		t.Fatal(err)
	}
	defer small.close()
	err = nil
	for i := 0; err == nil && i < 10; i++ {
		err = small.putFile(want[i])
	}
	if errcode.CodeOf(err) != errcode.Conflict {
		t.Fatalf("headers over the limit: %v", err)
	}
	if _, err := newSpool(t.TempDir(), m, int64(info.CiphertextSize)-1, newChunkPool(int(m.ChunkSize)+16, 4)); errcode.CodeOf(err) != errcode.Conflict {
		t.Fatalf("records over the limit: %v", err)
	}
}
