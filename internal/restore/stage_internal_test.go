package restore

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/twinit/byok-backup/internal/assets"
)

// blockTarget records staged blocks; only StageBlock is used.
type blockTarget struct {
	Target
	mu     sync.Mutex
	blocks map[string]map[string][]byte // path -> id -> data
	fail   error
}

func (b *blockTarget) StageBlock(_ context.Context, tenant, path, id string, data []byte) error {
	if b.fail != nil {
		return b.fail
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.blocks[path] == nil {
		b.blocks[path] = map[string][]byte{}
	}
	b.blocks[path][id] = bytes.Clone(data)
	return nil
}

// TestStagerBlocks: files of 0, 1, block-size and several blocks are split
// into blocks whose ids, in commit order, reassemble the content exactly,
// with the whole content's MD5; ids are 8 bytes (12 base64 characters)
// like assets.PutFile's and differ between attempts.
func TestStagerBlocks(t *testing.T) {
	tg := &blockTarget{blocks: map[string]map[string][]byte{}}
	var files []stagedFile
	st, err := newStager(t.Context(), tg, "acme", 2, func(sf stagedFile) error { files = append(files, sf); return nil })
	if err != nil {
		t.Fatal(err)
	}
	st.size = 7
	contents := map[string][]byte{"empty": {}, "one": []byte("x"), "exact": []byte("1234567"), "many": bytes.Repeat([]byte("abcdefghij"), 5)}
	for _, p := range []string{"empty", "exact", "many", "one"} {
		c := contents[p]
		if err := st.file(assets.File{Path: p, Size: int64(len(c))}, bytes.NewReader(append(bytes.Clone(c), "trailing"...))); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.wait(); err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 {
		t.Fatalf("%d staged files", len(files))
	}
	for _, sf := range files {
		want := contents[sf.f.Path]
		var got []byte
		for _, id := range st.blockIDs(sf.blocks) {
			if len(id) != 12 {
				t.Fatalf("block id %q is not 8 bytes", id)
			}
			got = append(got, tg.blocks[sf.f.Path][id]...)
		}
		if !bytes.Equal(got, want) || len(tg.blocks[sf.f.Path]) != int(sf.blocks) {
			t.Fatalf("%s: reassembled %q from %d blocks, want %q", sf.f.Path, got, len(tg.blocks[sf.f.Path]), want)
		}
	}
	other, err := newStager(t.Context(), tg, "acme", 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if other.blockID(0) == st.blockID(0) {
		t.Fatalf("two attempts share block id %s", st.blockID(0))
	}
}

// TestStagerFailure: a failed upload is returned by wait, and a short
// content stream fails the file.
func TestStagerFailure(t *testing.T) {
	boom := errors.New("boom")
	st, err := newStager(t.Context(), &blockTarget{fail: boom}, "acme", 1, func(stagedFile) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	_ = st.file(assets.File{Path: "a", Size: 3}, bytes.NewReader([]byte("abc")))
	if err := st.wait(); !errors.Is(err, boom) {
		t.Fatalf("wait = %v, want boom", err)
	}
	st, err = newStager(t.Context(), &blockTarget{blocks: map[string]map[string][]byte{}}, "acme", 1, func(stagedFile) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := st.file(assets.File{Path: "a", Size: 5}, bytes.NewReader([]byte("abc"))); err == nil {
		t.Fatal("short content staged")
	}
	if err := st.wait(); err != nil {
		t.Fatal(err)
	}
}
