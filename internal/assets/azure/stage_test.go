package azure

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"testing"

	"github.com/twinit/byok-backup/internal/assets"
)

// TestCommitFileContentMD5 covers what the conformance suite's
// StageThenCommitFile (run here by TestConformance) can't see: the blob's
// stored Content-MD5. CommitFile stores the one it is given, and none when
// given none (the restore commits staged files that way); a block never
// staged can't be committed.
func TestCommitFileContentMD5(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, nil)
	content := make([]byte, 3*1000+17)
	(&prngReader{r: newRand(7)}).Read(content)
	id := func(i int) string { return base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "%08d", i)) }
	commit := func(path string, sum []byte) []byte {
		t.Helper()
		var ids []string
		for i := 0; i*1000 < len(content); i++ {
			ids = append(ids, id(i))
			if err := s.StageBlock(ctx, "t1", path, id(i), content[i*1000:min((i+1)*1000, len(content))]); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CommitFile(ctx, "t1", assets.File{Path: path, Size: int64(len(content))}, ids, sum); err != nil {
			t.Fatal(err)
		}
		props, err := s.files.NewBlobClient("t1/"+path).GetProperties(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		return props.ContentMD5
	}
	sum := md5.Sum(content)
	if got := commit("with.bin", sum[:]); !bytes.Equal(got, sum[:]) {
		t.Fatalf("Content-MD5 %x, want %x", got, sum)
	}
	if got := commit("without.bin", nil); len(got) != 0 {
		t.Fatalf("committed without an MD5, stored %x", got)
	}
	got := readFiles(t, s, "t1")
	if len(got) != 2 || !bytes.Equal(got[0].Content, content) || !bytes.Equal(got[1].Content, content) {
		t.Fatalf("committed files: %d", len(got))
	}
	if err := s.CommitFile(ctx, "t1", assets.File{Path: "missing", Size: 1}, []string{id(9)}, nil); err == nil {
		t.Fatal("committed a block that was never staged")
	}
}
