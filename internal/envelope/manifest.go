package envelope

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"strings"

	"github.com/twinit/byok-backup/internal/keywrap"
)

// Magic opens every manifest; the byte after it is the format version.
const Magic = "BYOKBKUP"

// Version is the format version this package writes and reads.
const Version = 1

// Limits of the format (FORMAT.md §2). They bound what a parser accepts, so a
// hostile manifest cannot make a reader allocate or loop without bound.
const (
	MinChunkSize     = 1
	MaxChunkSize     = 64 << 20
	DefaultChunkSize = 4 << 20
	MaxStreams       = 1024
	MaxChunks        = 1 << 56 // the nonce holds a 56-bit chunk index
	MaxManifestSize  = 64 << 10
	maxKeyIDLen      = 2048
	maxWrappedKeyLen = 1024
)

// KeyRef says which key wrapped the data key, and holds the wrapped key. It is
// readable from a manifest before the data key is known, so a restore knows
// which key to ask for.
type KeyRef struct {
	Source     keywrap.Source // keywrap.Customer or keywrap.Platform
	KeyID      string         // versioned Key Vault key id, https://{vault}/keys/{name}/{version}
	Algorithm  string         // wrap algorithm: keywrap.Algorithm, the only one version 1 allows
	WrappedKey []byte
}

// NewKeyRef builds a KeyRef from a wrap result.
func NewKeyRef(src keywrap.Source, w keywrap.Wrapped) KeyRef {
	return KeyRef{Source: src, KeyID: w.KeyID, Algorithm: w.Algorithm, WrappedKey: bytes.Clone(w.WrappedKey)}
}

// Wrapped returns the wrapped key in the form keywrap.Wrapper.Unwrap takes;
// Version is the last segment of the versioned key id.
func (k KeyRef) Wrapped() keywrap.Wrapped {
	return keywrap.Wrapped{
		KeyID:      k.KeyID,
		Version:    k.KeyID[strings.LastIndexByte(k.KeyID, '/')+1:],
		Algorithm:  k.Algorithm,
		WrappedKey: bytes.Clone(k.WrappedKey),
	}
}

// StreamInfo describes one stream of a backup.
type StreamInfo struct {
	ID             uint32
	Chunks         uint64 // number of chunks, at least 1 (an empty stream has one empty final chunk)
	PlaintextSize  uint64
	CiphertextSize uint64 // PlaintextSize + 16·Chunks: the sum of the sealed chunks' lengths
}

// Manifest is a parsed, not yet authenticated manifest. Its fields are for
// inspection (which key to unwrap with, sizes to show); [Open] authenticates
// the bytes it was parsed from, not these fields.
type Manifest struct {
	Version   int
	Tenant    string
	BackupID  string
	Key       KeyRef
	ChunkSize int
	Streams   []StreamInfo // sorted by ID

	salt       []byte
	commitment []byte
	raw        []byte // the whole manifest as parsed
}

// Stream returns the stream with the given id.
func (m *Manifest) Stream(id uint32) (StreamInfo, bool) {
	for _, s := range m.Streams {
		if s.ID == id {
			return s, true
		}
	}
	return StreamInfo{}, false
}

// chunkLen is the plaintext length of chunk i of s (i < s.Chunks).
func chunkLen(s StreamInfo, chunkSize int, i uint64) int {
	if i+1 < s.Chunks {
		return chunkSize
	}
	return int(s.PlaintextSize - (s.Chunks-1)*uint64(chunkSize))
}

// ParseManifest decodes a manifest without any key. It returns
// [ErrUnsupportedFormat] if b is not this format or version, and
// [ErrIntegrity] if it is malformed.
func ParseManifest(b []byte) (*Manifest, error) {
	if len(b) < len(Magic)+1 || string(b[:len(Magic)]) != Magic {
		return nil, ErrUnsupportedFormat
	}
	if v := b[len(Magic)]; v != Version {
		return nil, fmt.Errorf("envelope: manifest version %d: %w", v, ErrUnsupportedFormat)
	}
	if len(b) > MaxManifestSize {
		return nil, ErrIntegrity
	}
	d := decoder{b: b[len(Magic)+1:]}
	m := &Manifest{Version: Version}
	m.Tenant = string(d.bytes8())
	m.BackupID = string(d.bytes8())
	m.Key.Source = keywrap.Source(d.bytes8())
	m.Key.KeyID = string(d.bytes16())
	m.Key.Algorithm = string(d.bytes8())
	m.Key.WrappedKey = bytes.Clone(d.bytes16())
	m.salt = bytes.Clone(d.fixed(saltSize))
	m.ChunkSize = int(d.u32())
	m.commitment = bytes.Clone(d.fixed(commitmentSize))
	n := int(d.u16())
	if d.bad || n > MaxStreams {
		return nil, ErrIntegrity
	}
	m.Streams = make([]StreamInfo, 0, n)
	for range n {
		m.Streams = append(m.Streams, StreamInfo{ID: d.u32(), Chunks: d.u64(), PlaintextSize: d.u64(), CiphertextSize: d.u64()})
	}
	d.fixed(macSize)
	if d.bad || len(d.b) != 0 {
		return nil, ErrIntegrity
	}
	if err := m.validate(); err != nil {
		return nil, ErrIntegrity
	}
	m.raw = bytes.Clone(b)
	return m, nil
}

// validate checks every rule a writer follows (FORMAT.md §4.2), so that
// exactly one byte string encodes a given manifest.
func (m *Manifest) validate() error {
	if err := validateIDs(m.Tenant, m.BackupID); err != nil {
		return err
	}
	if err := m.Key.validate(); err != nil {
		return err
	}
	if m.ChunkSize < MinChunkSize || m.ChunkSize > MaxChunkSize {
		return fmt.Errorf("envelope: chunk size %d is outside [%d, %d]", m.ChunkSize, MinChunkSize, MaxChunkSize)
	}
	if len(m.Streams) > MaxStreams {
		return fmt.Errorf("envelope: more than %d streams", MaxStreams)
	}
	for i, s := range m.Streams {
		if i > 0 && s.ID <= m.Streams[i-1].ID {
			return fmt.Errorf("envelope: stream ids are not strictly increasing")
		}
		if err := s.validate(m.ChunkSize); err != nil {
			return err
		}
	}
	return nil
}

func (s StreamInfo) validate(chunkSize int) error {
	bad := fmt.Errorf("envelope: stream %d: inconsistent chunk count and sizes", s.ID)
	if s.Chunks == 0 || s.Chunks > MaxChunks {
		return bad
	}
	cs := uint64(chunkSize)
	hi, full := bits.Mul64(s.Chunks-1, cs) // bytes in the non-final chunks
	if hi != 0 || s.PlaintextSize < full || s.PlaintextSize-full > cs {
		return bad
	}
	if s.Chunks > 1 && s.PlaintextSize == full { // only a sole chunk may be empty
		return bad
	}
	hi, tags := bits.Mul64(s.Chunks, tagSize)
	ct, carry := bits.Add64(s.PlaintextSize, tags, 0)
	if hi != 0 || carry != 0 || ct != s.CiphertextSize {
		return bad
	}
	return nil
}

func (k KeyRef) validate() error {
	if k.Source != keywrap.Customer && k.Source != keywrap.Platform {
		return fmt.Errorf("envelope: key source %q is neither %q nor %q", k.Source, keywrap.Customer, keywrap.Platform)
	}
	if !versionedKeyID(k.KeyID) {
		return fmt.Errorf("envelope: key id %q is not a versioned Key Vault key id", k.KeyID)
	}
	// Version 1 wraps only with RSA-OAEP-256 (FORMAT.md §4.2): a reader
	// that let this clear field choose could be steered to RSA1_5.
	if k.Algorithm != keywrap.Algorithm {
		return fmt.Errorf("envelope: wrap algorithm %.40q is not %s", k.Algorithm, keywrap.Algorithm)
	}
	if len(k.WrappedKey) == 0 || len(k.WrappedKey) > maxWrappedKeyLen {
		return fmt.Errorf("envelope: wrapped key is %d bytes, want 1 to %d", len(k.WrappedKey), maxWrappedKeyLen)
	}
	return nil
}

// versionedKeyID accepts https://{host}/keys/{name}/{version}, printable
// ASCII, with non-empty host, name and version.
func versionedKeyID(id string) bool {
	rest, ok := strings.CutPrefix(id, "https://")
	if !ok || len(id) > maxKeyIDLen || !printable(id) {
		return false
	}
	parts := strings.Split(rest, "/")
	return len(parts) == 4 && parts[0] != "" && parts[1] == "keys" && parts[2] != "" && parts[3] != ""
}

func printable(s string) bool {
	for i := range len(s) {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// validateIDs checks API.md's tenant id rule and the backup id rule
// (1–64 URL-unreserved characters).
func validateIDs(tenant, backupID string) error {
	if !validTenant(tenant) {
		return fmt.Errorf("envelope: invalid tenant id %q", tenant)
	}
	if len(backupID) == 0 || len(backupID) > 64 {
		return fmt.Errorf("envelope: invalid backup id %q", backupID)
	}
	for i := range len(backupID) {
		if !isAlnum(backupID[i]) && !strings.ContainsRune("-._~", rune(backupID[i])) {
			return fmt.Errorf("envelope: invalid backup id %q", backupID)
		}
	}
	return nil
}

// validTenant implements ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$.
func validTenant(t string) bool {
	if len(t) == 0 || len(t) > 63 || t[0] == '-' || t[len(t)-1] == '-' {
		return false
	}
	for i := range len(t) {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// appendBody encodes everything but the MAC (FORMAT.md §4.1).
func (m *Manifest) appendBody(b []byte) []byte {
	b = append(b, Magic...)
	b = append(b, Version)
	b = appendBytes8(b, []byte(m.Tenant))
	b = appendBytes8(b, []byte(m.BackupID))
	b = appendBytes8(b, []byte(m.Key.Source))
	b = appendBytes16(b, []byte(m.Key.KeyID))
	b = appendBytes8(b, []byte(m.Key.Algorithm))
	b = appendBytes16(b, m.Key.WrappedKey)
	b = append(b, m.salt...)
	b = binary.BigEndian.AppendUint32(b, uint32(m.ChunkSize))
	b = append(b, m.commitment...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Streams)))
	for _, s := range m.Streams {
		b = binary.BigEndian.AppendUint32(b, s.ID)
		b = binary.BigEndian.AppendUint64(b, s.Chunks)
		b = binary.BigEndian.AppendUint64(b, s.PlaintextSize)
		b = binary.BigEndian.AppendUint64(b, s.CiphertextSize)
	}
	return b
}

// appendBytes8 and appendBytes16 write a length-prefixed field; callers have
// validated the length already.
func appendBytes8(b, v []byte) []byte {
	if len(v) > math.MaxUint8 {
		panic("envelope: internal error: field too long")
	}
	return append(append(b, byte(len(v))), v...)
}

func appendBytes16(b, v []byte) []byte {
	if len(v) > math.MaxUint16 {
		panic("envelope: internal error: field too long")
	}
	return append(binary.BigEndian.AppendUint16(b, uint16(len(v))), v...)
}

// decoder reads big-endian fields; past the end it sets bad and returns
// zero values, so ParseManifest checks once at the end.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) fixed(n int) []byte {
	if d.bad || len(d.b) < n {
		d.bad = true
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u16() uint16 {
	if v := d.fixed(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if v := d.fixed(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if v := d.fixed(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (d *decoder) bytes8() []byte {
	if v := d.fixed(1); v != nil {
		return d.fixed(int(v[0]))
	}
	return nil
}

func (d *decoder) bytes16() []byte { return d.fixed(int(d.u16())) }
