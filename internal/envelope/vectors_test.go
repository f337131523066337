package envelope

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"testing"
)

//go:embed testdata/vectors
var vectorFS embed.FS

// vectorFile is one parsed file of testdata/vectors (FORMAT.md §9).
type vectorFile struct {
	name     string
	header   map[string]string
	manifest []byte
	chunks   map[[2]uint64][]byte
}

func loadVectors(t testing.TB) []vectorFile {
	t.Helper()
	entries, err := fs.ReadDir(vectorFS, "testdata/vectors")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatal("no test vectors in testdata/vectors: run go generate ./internal/envelope/")
	}
	var vs []vectorFile
	for _, e := range entries {
		b, err := vectorFS.ReadFile(path.Join("testdata/vectors", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		v, err := parseVector(e.Name(), b)
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		vs = append(vs, v)
	}
	return vs
}

func parseVector(name string, b []byte) (vectorFile, error) {
	v := vectorFile{name: name, header: map[string]string{}, chunks: map[[2]uint64][]byte{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	inBody := false
	for sc.Scan() {
		line := sc.Text()
		if !inBody {
			if line == "" {
				inBody = true
				continue
			}
			k, val, ok := strings.Cut(line, ": ")
			if !ok {
				return v, fmt.Errorf("bad header line %q", line)
			}
			v.header[k] = val
			continue
		}
		f := strings.Split(line, " ")
		switch {
		case f[0] == "manifest" && len(f) == 2:
			m, err := base64.StdEncoding.DecodeString(f[1])
			if err != nil {
				return v, err
			}
			v.manifest = m
		case f[0] == "chunk" && len(f) == 4:
			s, err1 := strconv.ParseUint(f[1], 10, 32)
			i, err2 := strconv.ParseUint(f[2], 10, 64)
			c, err3 := base64.StdEncoding.DecodeString(f[3])
			if err := errors.Join(err1, err2, err3); err != nil {
				return v, err
			}
			v.chunks[[2]uint64{s, i}] = c
		default:
			return v, fmt.Errorf("bad body line %q", line)
		}
	}
	if v.header["expect"] == "" {
		return v, errors.New("no expect header")
	}
	return v, sc.Err()
}

func (v vectorFile) store() *memStore {
	st := newMemStore()
	for k, c := range v.chunks {
		st.chunks[k] = bytes.Clone(c)
	}
	return st
}

// outcome classifies an error the way vectors name outcomes.
func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrIntegrity):
		return "integrity"
	case errors.Is(err, ErrUnsupportedFormat):
		return "unsupported"
	case errors.Is(err, fs.ErrNotExist):
		return "missing"
	}
	return "other: " + err.Error()
}

// runVector reads a vector through every reading API (stream reader, Verify,
// OpenChunk) and checks that they agree; it returns the outcome and the
// streams read.
func runVector(t *testing.T, v vectorFile) (string, map[uint32][]byte) {
	m, err := ParseManifest(v.manifest)
	if err != nil {
		return outcome(err), nil
	}
	dkBytes, err := hex.DecodeString(v.header["data key"])
	if err != nil {
		t.Fatal(err)
	}
	dk, err := DataKeyFromBytes(dkBytes)
	if err != nil {
		t.Fatal(err)
	}
	defer dk.Destroy()
	r, err := Open(m, dk, v.header["tenant"], v.header["backup id"])
	if err != nil {
		return outcome(err), nil
	}
	ctx := context.Background()
	streams := map[uint32][]byte{}
	streamOutcome := "ok"
	for _, s := range r.Manifest().Streams {
		sr, err := r.Stream(ctx, s.ID, v.store())
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(sr)
		if err != nil {
			streamOutcome = outcome(err)
			break
		}
		streams[s.ID] = b
	}
	verifyOutcome := outcome(r.Verify(ctx, v.store(), 2))
	chunkOutcome := "ok"
chunks:
	for _, s := range r.Manifest().Streams {
		for i := range s.Chunks {
			c, ok := v.chunks[[2]uint64{uint64(s.ID), i}]
			if !ok {
				chunkOutcome = "missing"
				break chunks
			}
			if _, err := r.OpenChunk(s.ID, i, bytes.Clone(c)); err != nil {
				chunkOutcome = outcome(err)
				break chunks
			}
		}
	}
	if streamOutcome != verifyOutcome || streamOutcome != chunkOutcome {
		t.Errorf("APIs disagree: Stream %s, Verify %s, OpenChunk %s", streamOutcome, verifyOutcome, chunkOutcome)
	}
	return streamOutcome, streams
}

func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.name, func(t *testing.T) {
			got, streams := runVector(t, v)
			if want := v.header["expect"]; got != want {
				t.Fatalf("outcome %s, want %s (%s)", got, want, v.header["comment"])
			}
			if got != "ok" {
				return
			}
			checkOKVector(t, v, streams)
		})
	}
}

func checkOKVector(t *testing.T, v vectorFile, streams map[uint32][]byte) {
	m, err := ParseManifest(v.manifest)
	if err != nil {
		t.Fatal(err)
	}
	wk, _ := hex.DecodeString(v.header["wrapped key"])
	if string(m.Key.Source) != v.header["key source"] || m.Key.KeyID != v.header["key id"] ||
		m.Key.Algorithm != v.header["algorithm"] || !bytes.Equal(m.Key.WrappedKey, wk) ||
		strconv.Itoa(m.ChunkSize) != v.header["chunk size"] || m.Tenant != v.header["tenant"] || m.BackupID != v.header["backup id"] {
		t.Fatalf("manifest fields %+v do not match the vector header", m)
	}
	want := map[uint32]string{}
	for k, val := range v.header {
		if id, ok := strings.CutPrefix(k, "stream "); ok {
			n, err := strconv.ParseUint(id, 10, 32)
			if err != nil {
				t.Fatal(err)
			}
			want[uint32(n)] = val
		}
	}
	if len(want) != len(streams) || len(m.Streams) != len(streams) {
		t.Fatalf("%d streams read, %d in the manifest, %d in the vector", len(streams), len(m.Streams), len(want))
	}
	for id, b := range streams {
		if got := fmt.Sprintf("%d %x", len(b), sha256.Sum256(b)); got != want[id] {
			t.Errorf("stream %d: got %s, want %s", id, got, want[id])
		}
	}
	// The manifest is canonical: re-encoding the parsed fields gives the
	// same bytes.
	if body := m.appendBody(nil); !bytes.Equal(body, v.manifest[:len(v.manifest)-macSize]) {
		t.Error("re-encoded manifest differs")
	}
}

// TestVectorCoverage fails if a kind of rejection the format promises loses
// its vector (issue 3: every rejection has a vector and a test).
func TestVectorCoverage(t *testing.T) {
	have := map[string]string{}
	for _, v := range loadVectors(t) {
		have[v.name] = v.header["expect"]
	}
	required := map[string]string{
		"ok_two_streams": "ok", "ok_empty_streams": "ok", "ok_exact_chunk": "ok", "ok_chunk_plus_one": "ok",
		"manifest_bad_magic": "unsupported", "manifest_version_2": "unsupported",
		"manifest_algorithm_rsa1_5_valid_mac": "integrity", "manifest_algorithm_rsa_oaep_valid_mac": "integrity",
		"chunk_flip_first_byte": "integrity", "chunk_flip_tag": "integrity", "manifest_flip_mac": "integrity",
		"manifest_flip_wrapped_key": "integrity", "manifest_flip_key_id": "integrity", "manifest_flip_commitment": "integrity",
		"chunk_reordered": "integrity", "chunk_duplicated": "integrity", "chunk_dropped": "integrity",
		"chunk_swapped_across_streams": "integrity", "chunk_from_other_backup": "integrity", "chunk_from_other_tenant": "integrity",
		"wrong_tenant": "integrity", "wrong_backup_id": "integrity", "wrong_data_key": "integrity",
		"missing_final_chunk": "missing", "chunk_final_as_nonfinal": "integrity", "chunk_nonfinal_as_final": "integrity",
		"chunk_final_extended": "integrity", "chunk_larger_than_declared": "integrity",
		"manifest_fewer_chunks_than_stream": "integrity", "manifest_more_chunks_than_stream": "integrity",
		"manifest_final_size_mismatch_valid_mac": "integrity", "manifest_streams_unsorted_valid_mac": "integrity",
		"ok_rewrapped": "ok", "rewrap_mac_not_recomputed": "integrity", "rewrap_other_data_key": "integrity",
	}
	for name, expect := range required {
		if have[name] != expect {
			t.Errorf("vector %s: expect %q, want a vector expecting %q", name, have[name], expect)
		}
	}
}
