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

// TestStageThenCommitFile: blocks staged over an existing file leave it
// (content, properties, ETag, listing) unchanged until CommitFile, which
// then makes them the content with the file's properties, metadata and
// Content-MD5; an empty block list commits an empty file, and a new name
// with only staged blocks is not listed.
func TestStageThenCommitFile(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, nil)
	old := assets.File{Path: "dir/f.bin", Size: 3, ContentType: "text/plain"}
	putFiles(t, s, "t1", newTestFile(old, []byte("old")))
	before := readFiles(t, s, "t1")
	listed := collect(t, s.Files(ctx, "t1"))

	content := make([]byte, 3*1000+17)
	(&prngReader{r: newRand(7)}).Read(content)
	id := func(i int) string { return base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "%08d", i)) }
	var ids []string
	for i := 0; i*1000 < len(content); i++ {
		ids = append(ids, id(i))
		if err := s.StageBlock(ctx, "t1", old.Path, id(i), content[i*1000:min((i+1)*1000, len(content))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.StageBlock(ctx, "t1", "new.bin", id(0), []byte("invisible")); err != nil {
		t.Fatal(err)
	}
	now := readFiles(t, s, "t1")
	if len(now) != 1 || !bytes.Equal(now[0].Content, before[0].Content) || !sameFile(now[0].File, before[0].File) {
		t.Fatalf("staging changed the target: %+v", now)
	}
	if relisted := collect(t, s.Files(ctx, "t1")); relisted[0].ETag != listed[0].ETag {
		t.Fatalf("staging changed the ETag: %s, was %s", relisted[0].ETag, listed[0].ETag)
	}

	f := assets.File{Path: old.Path, Size: int64(len(content)), ContentType: "application/x-twin", ContentEncoding: "gzip",
		ContentLanguage: "fr", ContentDisposition: `attachment; filename="x"`, CacheControl: "no-store",
		Metadata: map[string]string{"owner": "plant-7"}}
	sum := md5.Sum(content)
	if err := s.CommitFile(ctx, "t1", f, ids, sum[:]); err != nil {
		t.Fatal(err)
	}
	empty := assets.File{Path: "empty", ContentType: "text/plain"}
	esum := md5.Sum(nil)
	if err := s.CommitFile(ctx, "t1", empty, nil, esum[:]); err != nil {
		t.Fatal(err)
	}
	got := readFiles(t, s, "t1")
	if len(got) != 2 || !sameFile(got[0].File, f) || !bytes.Equal(got[0].Content, content) ||
		!sameFile(got[1].File, empty) || len(got[1].Content) != 0 {
		t.Fatalf("after commit: %+v", got)
	}
	props, err := s.files.NewBlobClient("t1/"+f.Path).GetProperties(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(props.ContentMD5, sum[:]) {
		t.Fatalf("Content-MD5 %x, want %x", props.ContentMD5, sum)
	}
	if err := s.CommitFile(ctx, "t1", assets.File{Path: "missing", Size: 1}, []string{id(9)}, nil); err == nil {
		t.Fatal("committed a block that was never staged")
	}
}
