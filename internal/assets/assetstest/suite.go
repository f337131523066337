package assetstest

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/errcode"
)

// Run runs the suite. open returns a fresh, empty store whose table and
// container exist; for the Azure adapter, with page and batch sizes small
// enough that listings span pages.
func Run(t *testing.T, open func(t *testing.T) assets.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s assets.Store)
	}{
		{"RecordsKeepEveryEDMType", testRecordsKeepEveryEDMType},
		{"ReplaceAndMerge", testReplaceAndMerge},
		{"ReplaceIntoEmptyAndToEmpty", testReplaceIntoEmptyAndToEmpty},
		{"ListingOrderMatchesCompareKeys", testListingOrderMatchesCompareKeys},
		{"PrunerDeletesOnlyWhatIsProvenAbsent", testPrunerOutOfOrder},
		{"PutFileShortContent", testPutFileShortContent},
		{"PutFileBytes", testPutFileBytes},
		{"Holds", testHolds},
		{"OpenFileChanged", testOpenFileChanged},
		{"StageThenCommitFile", testStageThenCommit},
		{"TenantIsolation", testTenantIsolation},
		{"RoundTripThroughTheCodec", testRoundTrip},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func tf(f assets.File, content []byte) TestFile { return TestFile{File: f, Content: content} }

func Collect[T any](t testing.TB, seq func(func(T, error) bool)) []T {
	t.Helper()
	var out []T
	for v, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func PutRecords(t testing.TB, s assets.Store, tenant string, recs ...assets.Record) {
	t.Helper()
	ctx := context.Background()
	w, err := s.NewRecordWriter(tenant)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func PutFiles(t testing.TB, s assets.Store, tenant string, files ...TestFile) {
	t.Helper()
	for _, f := range files {
		if err := s.PutFile(context.Background(), tenant, f.File, bytes.NewReader(f.Content)); err != nil {
			t.Fatal(err)
		}
	}
}

func ReadFiles(t testing.TB, s assets.Store, tenant string) []TestFile {
	t.Helper()
	var out []TestFile
	for _, f := range Collect(t, s.Files(context.Background(), tenant)) {
		rc, err := s.OpenFile(context.Background(), tenant, f)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tf(f, b))
	}
	return out
}

// restoreStream is the restore pipeline in miniature (doc.go "Replace").
func RestoreStream(t testing.TB, s assets.Store, r io.Reader, tenant string, replace bool) assets.Counts {
	t.Helper()
	ctx := context.Background()
	dec := assets.NewDecoder(r)
	rw, err := s.NewRecordWriter(tenant)
	if err != nil {
		t.Fatal(err)
	}
	rp, _ := s.NewRecordPruner(tenant)
	fp, _ := s.NewFilePruner(tenant)
	for {
		k, err := dec.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch k {
		case assets.KindRecord:
			if err := rw.Put(ctx, dec.Record()); err != nil {
				t.Fatal(err)
			}
			if replace {
				if err := rp.Keep(ctx, dec.Record().RowKey); err != nil {
					t.Fatal(err)
				}
			}
		case assets.KindFile:
			if err := rw.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if err := s.PutFile(ctx, tenant, dec.File(), dec.Content()); err != nil {
				t.Fatal(err)
			}
			if replace {
				if err := fp.Keep(ctx, dec.File().Path); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := rw.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if replace {
		if _, err := rp.Finish(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := fp.Finish(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return dec.Counts()
}

func KeysOf(rs []assets.Record) []string {
	var k []string
	for _, r := range rs {
		k = append(k, r.RowKey)
	}
	return k
}

// testRecordsKeepEveryEDMType writes records with every EDM type and edge
// values through RecordWriter, reads them back with Records and compares
// type and value (doubles by bits).
func testRecordsKeepEveryEDMType(t *testing.T, s assets.Store) {
	want := []assets.Record{EdgeRecord("a"), EdgeRecord("b"), {RowKey: "bare"}}
	PutRecords(t, s, "t1", want...)
	got := Collect(t, s.Records(context.Background(), "t1"))
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range want {
		for _, p := range want[i].Properties {
			q, ok := got[i].Get(p.Name)
			if !ok || !p.Equal(q) {
				t.Errorf("record %q property %q: got %+v, want %+v", want[i].RowKey, p.Name, q, p)
			}
		}
		if !want[i].Equal(got[i]) {
			t.Errorf("record %q differs:\n got %+v\nwant %+v", want[i].RowKey, got[i], want[i])
		}
	}
}

func testReplaceAndMerge(t *testing.T, s assets.Store) {
	backupRecs := []assets.Record{EdgeRecord("b"), EdgeRecord("d"), {RowKey: "f"}}
	backupFiles := SampleFiles()
	stream := EncodeSample(t, backupRecs, backupFiles)

	seedTarget := func(tenant string) {
		// Extra keys before, between and after the backup's, and a
		// backup key with different content.
		PutRecords(t, s, tenant, assets.Record{RowKey: "a"}, assets.Record{RowKey: "c"}, assets.Record{RowKey: "d", Properties: []assets.Property{
			{Name: "old", Type: assets.TypeString, Value: "x"}}}, assets.Record{RowKey: "e"}, assets.Record{RowKey: "g"}, assets.Record{RowKey: "h"})
		PutFiles(t, s, tenant, tf(assets.File{Path: "0-first"}, nil), tf(assets.File{Path: "a.txt", Size: 3}, []byte("old")),
			tf(assets.File{Path: "c"}, nil), tf(assets.File{Path: "zzz", Size: 1}, []byte("z")))
	}
	seedTarget("rep")
	seedTarget("mrg")
	RestoreStream(t, s, bytes.NewReader(stream), "rep", true)
	RestoreStream(t, s, bytes.NewReader(stream), "mrg", false)

	// replace: exactly the backup.
	got := Collect(t, s.Records(context.Background(), "rep"))
	if !slices.EqualFunc(got, backupRecs, assets.Record.Equal) {
		t.Errorf("replace records: %v", KeysOf(got))
	}
	gotFiles := ReadFiles(t, s, "rep")
	if len(gotFiles) != len(backupFiles) {
		t.Fatalf("replace files: %d, want %d", len(gotFiles), len(backupFiles))
	}
	for i := range backupFiles {
		if !SameFile(gotFiles[i].File, backupFiles[i].File) || !bytes.Equal(gotFiles[i].Content, backupFiles[i].Content) {
			t.Errorf("replace file %d: %+v", i, gotFiles[i].File)
		}
	}
	// merge: the backup's records and files upserted (d replaced whole),
	// the others kept.
	got = Collect(t, s.Records(context.Background(), "mrg"))
	if k := KeysOf(got); !slices.Equal(k, []string{"a", "b", "c", "d", "e", "f", "g", "h"}) {
		t.Errorf("merge records: %v", k)
	}
	if d, _ := slices.BinarySearchFunc(got, "d", func(r assets.Record, k string) int { return strings.Compare(r.RowKey, k) }); !got[d].Equal(backupRecs[1]) {
		t.Errorf("merge did not replace record d: %+v", got[d])
	}
	var paths []string
	for _, f := range ReadFiles(t, s, "mrg") {
		paths = append(paths, f.Path)
		if f.Path == "a.txt" && string(f.Content) != "hello" {
			t.Errorf("merge did not overwrite a.txt: %q", f.Content)
		}
	}
	if want := []string{"0-first", "a.txt", "c", "dir/empty", "dir/sub/ü.bin", "zzz"}; !slices.Equal(paths, want) {
		t.Errorf("merge files: %v, want %v", paths, want)
	}
}

// testReplaceIntoEmptyAndToEmpty: an empty backup empties the target; a
// backup into an empty target deletes nothing.
func testReplaceIntoEmptyAndToEmpty(t *testing.T, s assets.Store) {
	PutRecords(t, s, "t1", assets.Record{RowKey: "a"}, assets.Record{RowKey: "b"}, assets.Record{RowKey: "c"})
	PutFiles(t, s, "t1", SampleFiles()...)
	RestoreStream(t, s, bytes.NewReader(EncodeSample(t, nil, nil)), "t1", true)
	if n := len(Collect(t, s.Records(context.Background(), "t1"))) + len(Collect(t, s.Files(context.Background(), "t1"))); n != 0 {
		t.Fatalf("%d assets left after replacing with an empty backup", n)
	}
	RestoreStream(t, s, bytes.NewReader(EncodeSample(t, []assets.Record{{RowKey: "x"}}, SampleFiles())), "t2", true)
	if n := len(Collect(t, s.Records(context.Background(), "t2"))); n != 1 {
		t.Fatalf("%d records", n)
	}
}

// testListingOrderMatchesCompareKeys: the emulator lists row keys and blob
// names in CompareKeys order, which the pruner's merge relies on.
func testListingOrderMatchesCompareKeys(t *testing.T, s assets.Store) {
	// U+E000 and U+FFFF sort after 😀 in UTF-16 order, before it in byte
	// order. U+FFFF isn't allowed in XML, so the blob listing can't carry it.
	keys := []string{"\uffff", "\ue000", "😀", "é", "Z", "a", "a b", "a-b", "ab", "A", "0", "€", "z~"}
	var recs []assets.Record
	var files []TestFile
	for _, k := range keys {
		recs = append(recs, assets.Record{RowKey: k})
		if k != "\uffff" {
			files = append(files, tf(assets.File{Path: "p/" + k}, nil))
		}
	}
	PutRecords(t, s, "t1", recs...)
	PutFiles(t, s, "t1", files...)
	check := func(what string, got []string) {
		want := slices.Clone(got)
		slices.SortFunc(want, assets.CompareKeys)
		if !slices.Equal(got, want) || len(got) < len(keys)-1 {
			t.Errorf("%s listed %q, CompareKeys order is %q", what, got, want)
		}
	}
	check("records", KeysOf(Collect(t, s.Records(context.Background(), "t1"))))
	var paths []string
	for _, f := range Collect(t, s.Files(context.Background(), "t1")) {
		paths = append(paths, f.Path)
	}
	check("files", paths)
}

func testPutFileShortContent(t *testing.T, s assets.Store) {
	for _, size := range []int64{10, 200 << 10} {
		err := s.PutFile(context.Background(), "t1", assets.File{Path: "x", Size: size}, strings.NewReader("abc"))
		if !errors.Is(err, assets.ErrShortContent) {
			t.Errorf("size %d: %v, want ErrShortContent", size, err)
		}
	}
	if n := len(Collect(t, s.Files(context.Background(), "t1"))); n != 0 {
		t.Fatalf("%d files after failed uploads", n)
	}
}

// testPutFileBytes: the restore's one-request write keeps every property,
// replaces an existing file, and refuses content of the wrong length
// without writing anything.
func testPutFileBytes(t *testing.T, s assets.Store) {
	ctx := t.Context()
	PutFiles(t, s, "t1", tf(assets.File{Path: "a.txt", Size: 3}, []byte("old")))
	want := SampleFiles()
	for _, f := range want {
		if err := s.PutFileBytes(ctx, "t1", f.File, f.Content); err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
	}
	got := ReadFiles(t, s, "t1")
	if len(got) != len(want) {
		t.Fatalf("%d files, want %d", len(got), len(want))
	}
	for i := range want {
		if !SameFile(got[i].File, want[i].File) || !bytes.Equal(got[i].Content, want[i].Content) {
			t.Errorf("file %d: got %+v %q, want %+v %q", i, got[i].File, got[i].Content, want[i].File, want[i].Content)
		}
	}
	for _, data := range [][]byte{[]byte("ab"), []byte("abcd")} {
		err := s.PutFileBytes(ctx, "t1", assets.File{Path: "wrong", Size: 3}, data)
		if !errors.Is(err, assets.ErrShortContent) {
			t.Errorf("%d bytes for size 3: %v, want ErrShortContent", len(data), err)
		}
	}
	if n := len(Collect(t, s.Files(ctx, "t1"))); n != len(want) {
		t.Fatalf("%d files after refused writes, want %d", n, len(want))
	}
}

// testHolds: records and files are told apart, per tenant.
func testHolds(t *testing.T, s assets.Store) {
	ctx := t.Context()
	check := func(tenant string, wantR, wantF bool) {
		t.Helper()
		r, f, err := s.Holds(ctx, tenant)
		if err != nil || r != wantR || f != wantF {
			t.Fatalf("Holds(%s) = %v, %v, %v; want %v, %v", tenant, r, f, err, wantR, wantF)
		}
	}
	check("t1", false, false)
	PutRecords(t, s, "t1", assets.Record{RowKey: "a"})
	check("t1", true, false)
	check("t2", false, false)
	PutFiles(t, s, "t2", tf(assets.File{Path: "f", Size: 1}, []byte("x")))
	check("t2", false, true)
	PutFiles(t, s, "t1", tf(assets.File{Path: "g", Size: 1}, []byte("y")))
	check("t1", true, true)
	if _, _, err := s.Holds(ctx, "Not A Tenant"); err == nil {
		t.Fatal("Holds took an invalid tenant id")
	}
}

// testOpenFileChanged: a file rewritten after listing isn't read mixed.
func testOpenFileChanged(t *testing.T, s assets.Store) {
	PutFiles(t, s, "t1", tf(assets.File{Path: "f", Size: 3}, []byte("one")))
	listed := Collect(t, s.Files(context.Background(), "t1"))
	PutFiles(t, s, "t1", tf(assets.File{Path: "f", Size: 3}, []byte("two")))
	if _, err := s.OpenFile(context.Background(), "t1", listed[0]); !errors.Is(err, assets.ErrFileChanged) {
		t.Fatalf("err = %v, want ErrFileChanged", err)
	}
	if err := s.DeleteFile(context.Background(), "t1", "f"); err != nil {
		t.Fatal(err)
	}
	unpinned := listed[0]
	unpinned.ETag = ""
	if _, err := s.OpenFile(context.Background(), "t1", unpinned); !errors.Is(err, assets.ErrFileGone) {
		t.Fatalf("err = %v, want ErrFileGone", err)
	}
	// Pinned to its listed ETag, Azurite answers 412 (not 404) for the
	// deleted blob; it is still reported gone, not changed.
	if _, err := s.OpenFile(context.Background(), "t1", listed[0]); !errors.Is(err, assets.ErrFileGone) {
		t.Fatalf("pinned read of a deleted file: err = %v, want ErrFileGone", err)
	}
}

// testPrunerOutOfOrder: a backup key out of order stops the pruner
// before it deletes a key it can't prove absent from the backup.
func testPrunerOutOfOrder(t *testing.T, s assets.Store) {
	ctx := t.Context()
	PutRecords(t, s, "t1", assets.Record{RowKey: "a"}, assets.Record{RowKey: "b"}, assets.Record{RowKey: "c"}, assets.Record{RowKey: "d"})
	p, err := s.NewRecordPruner("t1")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Keep(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if err := p.Keep(ctx, "b"); !errors.Is(err, assets.ErrOutOfOrder) {
		t.Fatalf("Keep after a larger key: %v, want ErrOutOfOrder", err)
	}
	if err := p.Keep(ctx, "c"); !errors.Is(err, assets.ErrOutOfOrder) {
		t.Fatalf("Keep of the same key again: %v, want ErrOutOfOrder", err)
	}
	// c (kept) and d (after the last kept key, never finished) stay.
	for _, k := range []string{"c", "d"} {
		if !slices.Contains(KeysOf(Collect(t, s.Records(ctx, "t1"))), k) {
			t.Fatalf("%s was deleted", k)
		}
	}
}

// testStageThenCommit: staged blocks are invisible until CommitFile makes
// them the content, with the file's properties; an empty block list
// commits an empty file; a block never staged can't be committed.
func testStageThenCommit(t *testing.T, s assets.Store) {
	ctx := t.Context()
	old := assets.File{Path: "dir/f.bin", Size: 3, ContentType: "text/plain"}
	PutFiles(t, s, "t1", tf(old, []byte("old")))
	before := ReadFiles(t, s, "t1")
	listed := Collect(t, s.Files(ctx, "t1"))

	content := bytes.Repeat([]byte("0123456789abcdef"), 200)
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
	now := ReadFiles(t, s, "t1")
	if len(now) != 1 || !bytes.Equal(now[0].Content, before[0].Content) || !SameFile(now[0].File, before[0].File) {
		t.Fatalf("staging changed the target: %+v", now)
	}
	if relisted := Collect(t, s.Files(ctx, "t1")); relisted[0].ETag != listed[0].ETag {
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
	got := ReadFiles(t, s, "t1")
	if len(got) != 2 || !SameFile(got[0].File, f) || !bytes.Equal(got[0].Content, content) ||
		!SameFile(got[1].File, empty) || len(got[1].Content) != 0 {
		t.Fatalf("after commit: %+v", got)
	}
	if _, err := s.OpenFile(ctx, "t1", listed[0]); !errors.Is(err, assets.ErrFileChanged) {
		t.Fatalf("read of the version before the commit: %v, want ErrFileChanged", err)
	}
	if err := s.CommitFile(ctx, "t1", assets.File{Path: "missing", Size: 1}, []string{id(9)}, nil); err == nil {
		t.Fatal("committed a block that was never staged")
	}
}

// testTenantIsolation: tenant "a" never sees "ab"'s or "a-b"'s assets,
// nor does replacing "a" touch them; bad tenant ids are refused.
func testTenantIsolation(t *testing.T, s assets.Store) {
	ctx := t.Context()
	for _, tenant := range []string{"a", "ab", "a-b", "b"} {
		PutRecords(t, s, tenant, assets.Record{RowKey: tenant + "-r", Properties: []assets.Property{{Name: "T", Type: assets.TypeString, Value: tenant}}})
		PutFiles(t, s, tenant, tf(assets.File{Path: tenant + "-f", Size: int64(len(tenant))}, []byte(tenant)))
	}
	if k := KeysOf(Collect(t, s.Records(ctx, "a"))); !slices.Equal(k, []string{"a-r"}) {
		t.Errorf("records of a: %v", k)
	}
	if files := Collect(t, s.Files(ctx, "a")); len(files) != 1 || files[0].Path != "a-f" {
		t.Errorf("files of a: %+v", files)
	}
	RestoreStream(t, s, bytes.NewReader(EncodeSample(t, nil, nil)), "a", true)
	for _, other := range []string{"ab", "a-b", "b"} {
		if len(Collect(t, s.Records(ctx, other))) != 1 || len(Collect(t, s.Files(ctx, other))) != 1 {
			t.Errorf("replacing a changed %q", other)
		}
	}
	for _, bad := range []string{"", "A", "a/b", "a'b", "-a", strings.Repeat("x", 64)} {
		for _, err := range s.Records(ctx, bad) {
			if errcode.CodeOf(err) != errcode.InvalidRequest {
				t.Errorf("Records(%q) yielded %v", bad, err)
			}
		}
		for _, err := range s.Files(ctx, bad) {
			if errcode.CodeOf(err) != errcode.InvalidRequest {
				t.Errorf("Files(%q) yielded %v", bad, err)
			}
		}
		if _, err := s.OpenFile(ctx, bad, assets.File{Path: "x"}); errcode.CodeOf(err) != errcode.InvalidRequest {
			t.Errorf("OpenFile(%q): %v", bad, err)
		}
		if err := s.PutFile(ctx, bad, assets.File{Path: "x"}, bytes.NewReader(nil)); errcode.CodeOf(err) != errcode.InvalidRequest {
			t.Errorf("PutFile(%q): %v", bad, err)
		}
		if _, err := s.NewRecordWriter(bad); errcode.CodeOf(err) != errcode.InvalidRequest {
			t.Errorf("NewRecordWriter(%q): %v", bad, err)
		}
		if _, err := s.NewRecordPruner(bad); errcode.CodeOf(err) != errcode.InvalidRequest {
			t.Errorf("NewRecordPruner(%q): %v", bad, err)
		}
		if _, err := s.NewFilePruner(bad); errcode.CodeOf(err) != errcode.InvalidRequest {
			t.Errorf("NewFilePruner(%q): %v", bad, err)
		}
	}
}

// testRoundTrip: source → encode → decode → write into another tenant →
// read back the same assets, metadata names lowercased as Azure lists them.
func testRoundTrip(t *testing.T, s assets.Store) {
	ctx := t.Context()
	recs := []assets.Record{EdgeRecord("a"), {RowKey: "b"}, EdgeRecord("c")}
	PutRecords(t, s, "src", recs...)
	files := SampleFiles()
	big := tf(assets.File{Path: "big", Size: 200 << 10, Metadata: map[string]string{"CamelCase": "v"}}, bytes.Repeat([]byte{7}, 200<<10))
	files = append(files, big)
	PutFiles(t, s, "src", files...)
	var stream bytes.Buffer
	enc := assets.NewEncoder(&stream)
	for r, err := range s.Records(ctx, "src") {
		if err != nil {
			t.Fatal(err)
		}
		if err := enc.WriteRecord(r); err != nil {
			t.Fatal(err)
		}
	}
	for f, err := range s.Files(ctx, "src") {
		if err != nil {
			t.Fatal(err)
		}
		if f.Path == "big" && (f.Metadata["camelcase"] != "v" || len(f.Metadata) != 1) {
			t.Fatalf("metadata names as listed: %v, want lowercased", f.Metadata)
		}
		rc, err := s.OpenFile(ctx, "src", f)
		if err != nil {
			t.Fatal(err)
		}
		err = enc.WriteFile(f, rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	want := assets.Counts{Records: 3, Files: int64(len(files)), Bytes: 5 + 3 + 200<<10}
	if enc.Counts() != want {
		t.Fatalf("encoded %+v, want %+v", enc.Counts(), want)
	}
	if got := RestoreStream(t, s, bytes.NewReader(stream.Bytes()), "dst", false); got != want {
		t.Fatalf("restored %+v, want %+v", got, want)
	}
	if !slices.EqualFunc(Collect(t, s.Records(ctx, "dst")), recs, assets.Record.Equal) {
		t.Fatal("records differ after the round trip")
	}
	a, b := ReadFiles(t, s, "src"), ReadFiles(t, s, "dst")
	if len(a) != len(b) {
		t.Fatalf("%d files, want %d", len(b), len(a))
	}
	for i := range a {
		if !SameFile(a[i].File, b[i].File) || !bytes.Equal(a[i].Content, b[i].Content) {
			t.Errorf("file %d differs", i)
		}
	}
}
