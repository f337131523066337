//go:build ignore

// gen_vectors writes the test vectors in testdata/vectors: one file per
// case, valid backups and every kind of tampering FORMAT.md §8 lists. Run it
// with `go generate ./internal/envelope/`. It is deterministic: the data keys
// and salts are fixed, so regenerating changes nothing unless the format did.
//
// File layout (FORMAT.md §9): "key: value" header lines, a blank line, then
// body lines "manifest <base64>" and "chunk <stream> <index> <base64>".
package main

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"log"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/twinit/byok-backup/internal/envelope"
	"github.com/twinit/byok-backup/internal/keywrap"
)

const chunkSize = 32

type chunkKey struct {
	stream uint32
	index  uint64
}

type backup struct {
	dk       []byte
	salt     []byte
	tenant   string
	id       string
	plain    map[uint32][]byte
	manifest []byte
	chunks   map[chunkKey][]byte
}

type sink struct{ chunks map[chunkKey][]byte }

func (s *sink) PutChunk(_ context.Context, stream uint32, index uint64, sealed []byte) error {
	s.chunks[chunkKey{stream, index}] = sealed
	return nil
}

func seeded(label string, n int) []byte {
	var out []byte
	for i := 0; len(out) < n; i++ {
		h := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", label, i)))
		out = append(out, h[:]...)
	}
	return out[:n]
}

// text is readable, deterministic plaintext.
func text(label string, n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%s line %d;", label, i)
	}
	return b.Bytes()[:n]
}

func keyRef(src keywrap.Source) envelope.KeyRef {
	return envelope.KeyRef{
		Source:     src,
		KeyID:      "https://contoso-kv.vault.azure.net/keys/twinit-backup/0123456789abcdef0123456789abcdef",
		Algorithm:  keywrap.Algorithm,
		WrappedKey: seeded("wrapped key", 256),
	}
}

func write(dk, salt []byte, tenant, id string, src keywrap.Source, cs int, plain map[uint32][]byte) *backup {
	key, err := envelope.DataKeyFromBytes(dk)
	if err != nil {
		log.Fatal(err)
	}
	defer key.Destroy()
	s := &sink{chunks: map[chunkKey][]byte{}}
	w, err := envelope.NewWriter(key, tenant, id, keyRef(src), s, &envelope.WriterOptions{ChunkSize: cs, Rand: bytes.NewReader(salt)})
	if err != nil {
		log.Fatal(err)
	}
	for _, sid := range slices.Sorted(maps.Keys(plain)) {
		sw, err := w.Create(context.Background(), sid)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := sw.Write(plain[sid]); err != nil {
			log.Fatal(err)
		}
		if err := sw.Close(); err != nil {
			log.Fatal(err)
		}
	}
	m, err := w.Finish()
	if err != nil {
		log.Fatal(err)
	}
	return &backup{dk: dk, salt: salt, tenant: tenant, id: id, plain: plain, manifest: m, chunks: s.chunks}
}

// std is the common backup most tampering starts from: two streams, stream 0
// of 3 chunks (the last short) and stream 1 of 2 full chunks.
func std() *backup {
	return write(seeded("data key A", 32), seeded("salt A", 32), "acme", "20260101T020000Z-a1", keywrap.Customer, chunkSize,
		map[uint32][]byte{0: text("records", 2*chunkSize+5), 1: text("files", 2*chunkSize)})
}

// clone copies b so a case can tamper with it.
func (b *backup) clone() *backup {
	c := *b
	c.manifest = bytes.Clone(b.manifest)
	c.chunks = make(map[chunkKey][]byte, len(b.chunks))
	for k, v := range b.chunks {
		c.chunks[k] = bytes.Clone(v)
	}
	return &c
}

// remac recomputes the manifest MAC as FORMAT.md §3 and §4.3 specify; only
// the cases that must get past the MAC to reach a later check use it.
func (b *backup) remac() {
	key, err := hkdf.Key(sha256.New, b.dk, b.salt, "byok-backup v1 manifest key", 32)
	if err != nil {
		log.Fatal(err)
	}
	body := b.manifest[:len(b.manifest)-32]
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	b.manifest = mac.Sum(body[:len(body):len(body)])
}

// rewrap replaces b's key reference with ref and MACs the result with
// data key dk (the real one for a genuine re-wrap, another for a forgery),
// byte for byte as FORMAT.md §10 specifies, without the envelope package.
func rewrap(b *backup, dk []byte, ref envelope.KeyRef) []byte {
	m := b.manifest
	i := len(envelope.Magic) + 1
	i += 1 + int(m[i])                           // tenant
	i += 1 + int(m[i])                           // backup id
	start := i                                   // key source, key id, algorithm, wrapped key follow
	i += 1 + int(m[i])                           // key source
	i += 2 + int(binary.BigEndian.Uint16(m[i:])) // key id
	i += 1 + int(m[i])                           // algorithm
	i += 2 + int(binary.BigEndian.Uint16(m[i:])) // wrapped key
	out := append([]byte(nil), m[:start]...)
	out = append(out, byte(len(ref.Source)))
	out = append(out, ref.Source...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(ref.KeyID)))
	out = append(out, ref.KeyID...)
	out = append(out, byte(len(ref.Algorithm)))
	out = append(out, ref.Algorithm...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(ref.WrappedKey)))
	out = append(out, ref.WrappedKey...)
	out = append(out, m[i:len(m)-32]...)
	c := *b
	c.manifest, c.dk = append(out, make([]byte, 32)...), dk
	c.remac()
	return c.manifest
}

// streamEntry returns the offset of manifest stream entry i (28 bytes each,
// just before the 32-byte MAC).
func (b *backup) streamEntry(i int) int {
	n := int(binary.BigEndian.Uint16(b.manifest[len(b.manifest)-32-28*b.streamCount()-2:]))
	return len(b.manifest) - 32 - 28*n + 28*i
}

func (b *backup) streamCount() int { return len(b.plain) }

type vector struct {
	name, expect, comment string
	b                     *backup
	tenant, id            string // what the reader expects; default b's
	dk                    []byte // the key the reader uses; default b's
	// ref is the key reference an ok vector's header names (default
	// keyRef's); rewrapOf names the vector whose backup this one re-wraps
	// (FORMAT.md §10: same chunks, manifest equal but for the key fields
	// and the MAC).
	ref      *envelope.KeyRef
	rewrapOf string
}

func (v vector) file() []byte {
	var w bytes.Buffer
	tenant, id, dk := v.b.tenant, v.b.id, v.b.dk
	if v.tenant != "" {
		tenant = v.tenant
	}
	if v.id != "" {
		id = v.id
	}
	if v.dk != nil {
		dk = v.dk
	}
	fmt.Fprintf(&w, "expect: %s\n", v.expect)
	fmt.Fprintf(&w, "comment: %s\n", v.comment)
	fmt.Fprintf(&w, "data key: %x\n", dk)
	fmt.Fprintf(&w, "tenant: %s\n", tenant)
	fmt.Fprintf(&w, "backup id: %s\n", id)
	if v.rewrapOf != "" {
		fmt.Fprintf(&w, "rewrap of: %s\n", v.rewrapOf)
	}
	if v.expect == "ok" {
		ref := keyRef(keywrap.Customer)
		if bytes.Contains(v.b.manifest, []byte(keywrap.Platform)) {
			ref.Source = keywrap.Platform
		}
		if v.ref != nil {
			ref = *v.ref
		}
		fmt.Fprintf(&w, "key source: %s\n", ref.Source)
		fmt.Fprintf(&w, "key id: %s\n", ref.KeyID)
		fmt.Fprintf(&w, "algorithm: %s\n", ref.Algorithm)
		fmt.Fprintf(&w, "wrapped key: %x\n", ref.WrappedKey)
		fmt.Fprintf(&w, "chunk size: %d\n", chunkSizeOf(v.b))
		for _, sid := range slices.Sorted(maps.Keys(v.b.plain)) {
			p := v.b.plain[sid]
			fmt.Fprintf(&w, "stream %d: %d %x\n", sid, len(p), sha256.Sum256(p))
		}
	}
	w.WriteString("\n")
	fmt.Fprintf(&w, "manifest %s\n", base64.StdEncoding.EncodeToString(v.b.manifest))
	keys := slices.SortedFunc(maps.Keys(v.b.chunks), func(a, b chunkKey) int {
		if a.stream != b.stream {
			return int(a.stream) - int(b.stream)
		}
		return int(a.index) - int(b.index)
	})
	for _, k := range keys {
		fmt.Fprintf(&w, "chunk %d %d %s\n", k.stream, k.index, base64.StdEncoding.EncodeToString(v.b.chunks[k]))
	}
	return w.Bytes()
}

var chunkSizes = map[*backup]int{}

func chunkSizeOf(b *backup) int {
	if cs, ok := chunkSizes[b]; ok {
		return cs
	}
	return chunkSize
}

func main() {
	var vs []vector
	add := func(name, expect, comment string, b *backup) *vector {
		vs = append(vs, vector{name: name, expect: expect, comment: comment, b: b})
		return &vs[len(vs)-1]
	}
	dkA, saltA := seeded("data key A", 32), seeded("salt A", 32)

	// Valid backups.
	add("ok_two_streams", "ok", "stream 0 of three chunks (last short), stream 1 of two full chunks", std())
	add("ok_empty_streams", "ok", "two empty streams: each is one empty final chunk",
		write(dkA, saltA, "acme", "b-empty", keywrap.Customer, chunkSize, map[uint32][]byte{0: nil, 1: nil}))
	add("ok_no_streams", "ok", "a backup without streams",
		write(dkA, saltA, "acme", "b-none", keywrap.Customer, chunkSize, map[uint32][]byte{}))
	add("ok_one_byte", "ok", "one byte",
		write(dkA, saltA, "acme", "b-1", keywrap.Customer, chunkSize, map[uint32][]byte{0: text("x", 1)}))
	add("ok_chunk_minus_one", "ok", "chunk size - 1 bytes: one short final chunk",
		write(dkA, saltA, "acme", "b-cm1", keywrap.Customer, chunkSize, map[uint32][]byte{0: text("x", chunkSize-1)}))
	add("ok_exact_chunk", "ok", "exactly one chunk: a full final chunk, no empty chunk after it",
		write(dkA, saltA, "acme", "b-c", keywrap.Customer, chunkSize, map[uint32][]byte{0: text("x", chunkSize)}))
	add("ok_chunk_plus_one", "ok", "chunk size + 1 bytes: a full chunk and a one-byte final chunk",
		write(dkA, saltA, "acme", "b-cp1", keywrap.Customer, chunkSize, map[uint32][]byte{0: text("x", chunkSize+1)}))
	add("ok_platform_key", "ok", "data key wrapped by the platform key; stream ids 0 and 9",
		write(dkA, saltA, "t-1", "01JABCDEF._~-x", keywrap.Platform, chunkSize, map[uint32][]byte{0: text("r", 40), 9: text("f", 7)}))
	cs1 := write(dkA, saltA, "acme", "b-cs1", keywrap.Customer, 1, map[uint32][]byte{0: text("x", 3)})
	chunkSizes[cs1] = 1
	add("ok_chunk_size_one", "ok", "chunk size 1, three chunks", cs1)

	// Not this format.
	b := std().clone()
	b.manifest[0] ^= 0x20
	add("manifest_bad_magic", "unsupported", "first magic byte changed", b)
	b = std().clone()
	b.manifest[8] = 2
	b.remac()
	add("manifest_version_2", "unsupported", "version byte 2 with a valid MAC: a future format, not tampering", b)
	b = std().clone()
	b.manifest = nil
	add("manifest_empty", "unsupported", "zero-length manifest", b)
	b = std().clone()
	b.manifest = b.manifest[:5]
	add("manifest_short_magic", "unsupported", "manifest shorter than the magic", b)

	// Manifest tampering.
	// flip changes one bit at the offset find returns, found by content
	// rather than hard-coded so the cases stay right if the ids change.
	flip := func(name, comment string, find func(b *backup) int) {
		b := std().clone()
		off := find(b)
		if off < 0 || off >= len(b.manifest) {
			log.Fatalf("%s: offset %d out of range", name, off)
		}
		b.manifest[off] ^= 0x01
		add(name, "integrity", comment, b)
	}
	at := func(field []byte, delta int) func(b *backup) int {
		return func(b *backup) int {
			i := bytes.Index(b.manifest, field)
			if i < 0 {
				log.Fatalf("field %q not in manifest", field)
			}
			return i + delta
		}
	}
	ref := keyRef(keywrap.Customer)
	flip("manifest_flip_tenant", "a bit of the tenant id (acme -> acmd)", at([]byte("acme"), 3))
	flip("manifest_flip_backup_id", "a bit of the backup id", at([]byte("20260101T020000Z-a1"), 0))
	flip("manifest_flip_key_source", "a bit of the key source", at([]byte("customer"), 1))
	flip("manifest_flip_key_id", "a bit of the key id's version", at([]byte("0123456789abcdef0123"), 4))
	flip("manifest_flip_algorithm", "a bit of the wrap algorithm (RSA-OAEP-256 -> RSA-OAEP-257)", at([]byte("RSA-OAEP-256"), 11))
	flip("manifest_flip_wrapped_key", "a bit of the wrapped data key", at(ref.WrappedKey, 100))
	flip("manifest_flip_salt", "a bit of the salt", at(seeded("salt A", 32), 3))
	flip("manifest_flip_chunk_size", "a bit of the chunk size (32 -> 33)", at(seeded("salt A", 32), 32+3))
	flip("manifest_flip_commitment", "a bit of the key commitment", at(seeded("salt A", 32), 32+4+5))
	flip("manifest_flip_stream_size", "the low bit of stream 1's ciphertext size", func(b *backup) int { return len(b.manifest) - 32 - 1 })
	flip("manifest_flip_mac", "a bit of the MAC", func(b *backup) int { return len(b.manifest) - 1 })
	// Another wrap algorithm, even authentic, is refused: a reader must never
	// let the clear algorithm field choose how the key service decrypts.
	for _, c := range [][2]string{{"manifest_algorithm_rsa1_5_valid_mac", "RSA1_5"}, {"manifest_algorithm_rsa_oaep_valid_mac", "RSA-OAEP"}} {
		name, alg := c[0], c[1]
		b = std().clone()
		field := append([]byte{byte(len(keywrap.Algorithm))}, keywrap.Algorithm...)
		b.manifest = bytes.Replace(b.manifest, field, append([]byte{byte(len(alg))}, alg...), 1)
		b.remac()
		add(name, "integrity", "wrap algorithm "+alg+" instead of RSA-OAEP-256, MAC recomputed", b)
	}
	b = std().clone()
	b.manifest = b.manifest[:len(b.manifest)-1]
	add("manifest_truncated", "integrity", "last byte of the MAC removed", b)
	b = std().clone()
	b.manifest = append(b.manifest, 0)
	add("manifest_trailing_byte", "integrity", "a zero byte after the MAC", b)
	b = std().clone()
	e0, e1 := b.streamEntry(0), b.streamEntry(1)
	s0 := bytes.Clone(b.manifest[e0 : e0+28])
	copy(b.manifest[e0:], b.manifest[e1:e1+28])
	copy(b.manifest[e1:], s0)
	b.remac()
	add("manifest_streams_unsorted_valid_mac", "integrity", "stream entries in descending id order, MAC recomputed: not canonical", b)
	b = std().clone()
	e0 = b.streamEntry(0)
	binary.BigEndian.PutUint64(b.manifest[e0+4:], 2) // 2 chunks for 69 bytes
	b.remac()
	add("manifest_inconsistent_counts_valid_mac", "integrity", "stream 0 declares 2 chunks for 69 bytes, MAC recomputed", b)
	b = std().clone()
	e0 = b.streamEntry(0)
	binary.BigEndian.PutUint64(b.manifest[e0+12:], 70)
	binary.BigEndian.PutUint64(b.manifest[e0+20:], 70+48)
	b.remac()
	add("manifest_final_size_mismatch_valid_mac", "integrity", "stream 0 declares 70 bytes, the final chunk holds 5 not 6; MAC recomputed", b)
	b = std().clone()
	v := add("wrong_data_key", "integrity", "an authentic backup opened with another data key", b)
	v.dk = seeded("data key B", 32)
	v = add("wrong_tenant", "integrity", "an authentic backup of tenant acme opened as tenant acme2", std())
	v.tenant = "acme2"
	v = add("wrong_backup_id", "integrity", "an authentic backup opened as another backup of the same tenant", std())
	v.id = "20260102T020000Z-a2"
	b = std().clone()
	other := write(seeded("data key B", 32), seeded("salt B", 32), "acme", "20260101T020000Z-a1", keywrap.Customer, chunkSize, b.plain)
	b.manifest = other.manifest
	add("manifest_from_other_backup", "integrity", "manifest of another backup with the same ids and content but its own data key", b)

	// Re-wrapped backups (FORMAT.md §10): std's data key wrapped by another
	// key; the chunks are std's, untouched.
	newRef := envelope.KeyRef{
		Source:     keywrap.Platform,
		KeyID:      "https://platform-kv.vault.azure.net/keys/platform-backup/fedcba9876543210fedcba9876543210",
		Algorithm:  keywrap.Algorithm,
		WrappedKey: seeded("re-wrapped key", 384),
	}
	b = std().clone()
	b.manifest = rewrap(b, b.dk, newRef)
	v = add("ok_rewrapped", "ok", "ok_two_streams re-wrapped with the platform key: only the key fields and the MAC differ", b)
	v.ref, v.rewrapOf = &newRef, "ok_two_streams"
	b = std().clone()
	orig := bytes.Clone(b.manifest)
	b.manifest = rewrap(b, b.dk, newRef)
	copy(b.manifest[len(b.manifest)-32:], orig[len(orig)-32:])
	v = add("rewrap_mac_not_recomputed", "integrity", "ok_two_streams with a new key reference but the original MAC", b)
	v.rewrapOf = "ok_two_streams"
	b = std().clone()
	dkB := seeded("data key B", 32)
	b.manifest = rewrap(b, dkB, newRef)
	v = add("rewrap_other_data_key", "integrity", "a forged re-wrap: a wrapped key that unwraps to another data key, MAC made with that key; the commitment still names the original", b)
	v.dk, v.rewrapOf = dkB, "ok_two_streams"

	// Chunk tampering.
	cflip := func(name, comment string, k chunkKey, off int) {
		b := std().clone()
		c := b.chunks[k]
		if off < 0 {
			off += len(c)
		}
		c[off] ^= 0x80
		add(name, "integrity", comment, b)
	}
	cflip("chunk_flip_first_byte", "first ciphertext bit of stream 0 chunk 0", chunkKey{0, 0}, 0)
	cflip("chunk_flip_tag", "last tag bit of stream 0 chunk 1", chunkKey{0, 1}, -1)
	cflip("chunk_flip_final", "a ciphertext bit of the final chunk of stream 1", chunkKey{1, 1}, 10)
	b = std().clone()
	b.chunks[chunkKey{0, 0}], b.chunks[chunkKey{0, 1}] = b.chunks[chunkKey{0, 1}], b.chunks[chunkKey{0, 0}]
	add("chunk_reordered", "integrity", "chunks 0 and 1 of stream 0 swapped", b)
	b = std().clone()
	b.chunks[chunkKey{0, 1}] = bytes.Clone(b.chunks[chunkKey{0, 0}])
	add("chunk_duplicated", "integrity", "chunk 0 of stream 0 stored again as chunk 1", b)
	b = std().clone()
	b.chunks[chunkKey{1, 0}] = b.chunks[chunkKey{1, 1}]
	delete(b.chunks, chunkKey{1, 1})
	add("chunk_dropped", "integrity", "chunk 0 of stream 1 dropped, chunk 1 moved down to index 0", b)
	b = std().clone()
	b.chunks[chunkKey{0, 0}], b.chunks[chunkKey{1, 0}] = b.chunks[chunkKey{1, 0}], b.chunks[chunkKey{0, 0}]
	add("chunk_swapped_across_streams", "integrity", "chunk 0 of streams 0 and 1 swapped (same length)", b)
	b = std().clone()
	sameKeyOtherID := write(b.dk, b.salt, "acme", "20260101T020000Z-a2", keywrap.Customer, chunkSize, b.plain)
	b.chunks[chunkKey{0, 1}] = sameKeyOtherID.chunks[chunkKey{0, 1}]
	add("chunk_from_other_backup", "integrity", "chunk 1 of stream 0 from a backup with the same data key, salt and content but another backup id", b)
	b = std().clone()
	sameKeyOtherTenant := write(b.dk, b.salt, "acme2", b.id, keywrap.Customer, chunkSize, b.plain)
	b.chunks[chunkKey{0, 1}] = sameKeyOtherTenant.chunks[chunkKey{0, 1}]
	add("chunk_from_other_tenant", "integrity", "chunk 1 of stream 0 from tenant acme2's backup with the same data key, salt, backup id and content", b)
	// Same data key, salt and ids as std, stream 1 one chunk longer or
	// shorter: chunks that differ from std's only in their final flag.
	base := std()
	longer := write(base.dk, base.salt, base.tenant, base.id, keywrap.Customer, chunkSize, map[uint32][]byte{0: base.plain[0], 1: text("files", 3*chunkSize)})
	shorter := write(base.dk, base.salt, base.tenant, base.id, keywrap.Customer, chunkSize, map[uint32][]byte{0: base.plain[0], 1: text("files", chunkSize)})
	b = std().clone()
	b.chunks[chunkKey{1, 1}] = longer.chunks[chunkKey{1, 1}]
	add("chunk_nonfinal_as_final", "integrity", "the final chunk of stream 1 replaced by the same index of a longer stream (same key, same length, sealed as not final)", b)
	b = std().clone()
	b.chunks[chunkKey{1, 0}] = shorter.chunks[chunkKey{1, 0}]
	add("chunk_final_as_nonfinal", "integrity", "chunk 0 of stream 1 replaced by the final chunk of a one-chunk stream (same key, same length): a final chunk before the end", b)
	b = std().clone()
	b.manifest = bytes.Clone(shorter.manifest)
	add("manifest_fewer_chunks_than_stream", "integrity", "authentic manifest (same key) declaring 1 chunk for stream 1, whose chunks are 2: data after the final chunk", b)
	b = std().clone()
	b.manifest = bytes.Clone(longer.manifest)
	b.chunks[chunkKey{1, 2}] = bytes.Clone(longer.chunks[chunkKey{1, 2}])
	add("manifest_more_chunks_than_stream", "integrity", "authentic manifest (same key) declaring 3 chunks for stream 1, whose chunk 1 is final: truncation", b)
	b = std().clone()
	b.chunks[chunkKey{0, 2}] = append(b.chunks[chunkKey{0, 2}], 0)
	add("chunk_final_extended", "integrity", "one byte appended to the final chunk of stream 0", b)
	b = std().clone()
	b.chunks[chunkKey{0, 0}] = append(b.chunks[chunkKey{0, 0}], 0)
	add("chunk_larger_than_declared", "integrity", "one byte appended to a non-final chunk: larger than the chunk size", b)
	b = std().clone()
	c := b.chunks[chunkKey{0, 2}]
	b.chunks[chunkKey{0, 2}] = c[:len(c)-1]
	add("chunk_final_truncated", "integrity", "last byte of the final chunk of stream 0 removed", b)
	b = std().clone()
	b.chunks[chunkKey{1, 0}] = nil
	add("chunk_emptied", "integrity", "chunk 0 of stream 1 is an empty blob", b)

	// Missing chunks: the Source has nothing; the reader must not report a
	// complete stream.
	b = std().clone()
	delete(b.chunks, chunkKey{0, 2})
	add("missing_final_chunk", "missing", "final chunk of stream 0 absent: truncation at a chunk boundary", b)
	b = std().clone()
	delete(b.chunks, chunkKey{1, 0})
	add("missing_first_chunk", "missing", "chunk 0 of stream 1 absent", b)
	b = write(dkA, saltA, "acme", "b-empty", keywrap.Customer, chunkSize, map[uint32][]byte{0: nil})
	delete(b.chunks, chunkKey{0, 0})
	add("missing_empty_final_chunk", "missing", "the only (empty) chunk of an empty stream absent", b)

	dir := filepath.Join("testdata", "vectors")
	old, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			log.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for _, v := range vs {
		if seen[v.name] || strings.ContainsAny(v.name, " /") {
			log.Fatalf("bad or duplicate vector name %q", v.name)
		}
		seen[v.name] = true
		if err := os.WriteFile(filepath.Join(dir, v.name), v.file(), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("wrote %d vectors to %s\n", len(vs), dir)
}
