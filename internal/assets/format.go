package assets

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/twinit/byok-backup/internal/errcode"
)

// The stream format (see doc.go, "# Stream format").
const (
	magic         = "TWAS"
	formatVersion = 1

	tagRecord = 'R'
	tagFile   = 'F'
	tagEnd    = 'E'
)

// Limits of a file header, enforced by the encoder and the decoder. Blob
// names are at most 1,024 characters and metadata at most 8 KiB in Azure.
const (
	MaxPathBytes       = 4096
	MaxFileHeaderSize  = 64 << 10
	MaxFileSize        = 1 << 48 // above Azure's largest block blob (190.7 TiB)
	maxEndFrameSize    = 3 * binary.MaxVarintLen64
	maxMetadataEntries = 1024
)

// FormatError is a stream that doesn't follow the format: a tampered or
// buggy backup. Decoders return it wrapped in an [errcode.Error] with
// code IntegrityCheckFailed.
type FormatError struct {
	Offset int64  // stream offset where decoding stopped
	Reason string // what was wrong, for logs
	Err    error  // cause, if any (io.ErrUnexpectedEOF for truncation)
}

func (e *FormatError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("assets stream malformed at byte %d: %s: %v", e.Offset, e.Reason, e.Err)
	}
	return fmt.Sprintf("assets stream malformed at byte %d: %s", e.Offset, e.Reason)
}

func (e *FormatError) Unwrap() error { return e.Err }

func formatErr(off int64, cause error, format string, args ...any) error {
	return errcode.Wrap(&FormatError{Offset: off, Reason: fmt.Sprintf(format, args...), Err: cause},
		errcode.IntegrityCheckFailed,
		"The backup's content is malformed and can't be restored. Use another backup and report this one's id.")
}

// ErrOutOfOrder reports keys or paths not in strictly ascending [CompareKeys]
// order, which the format and the replace pruning rely on.
var ErrOutOfOrder = fmt.Errorf("keys are not in strictly ascending order")

// CompareKeys orders row keys and file paths by UTF-16 code units, the
// order Table Storage and Azurite list them in (measured: Azurite lists
// "\uffff" after "😀", byte order would not). Backups store keys in this
// order and [Pruner] merges in it.
func CompareKeys(a, b string) int {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb {
			return cmpUTF16(ra, rb)
		}
		a, b = a[na:], b[nb:]
	}
	switch {
	case a == "" && b == "":
		return 0
	case a == "":
		return -1
	default:
		return 1
	}
}

// cmpUTF16 compares two different runes by their first UTF-16 code unit,
// then by the whole rune: supplementary runes (surrogates D800–DFFF) sort
// before E000–FFFF.
func cmpUTF16(a, b rune) int {
	ua, ub := firstUnit(a), firstUnit(b)
	if ua != ub {
		if ua < ub {
			return -1
		}
		return 1
	}
	if a < b {
		return -1
	}
	return 1
}

func firstUnit(r rune) rune {
	if r1, _ := utf16.EncodeRune(r); r1 != utf8.RuneError {
		return r1
	}
	return r
}

// Validate reports the first reason f can't be encoded or stored.
func (f File) Validate() error {
	if err := checkKey(f.Path); err != nil {
		return fmt.Errorf("path: %w", err)
	}
	if f.Size < 0 || f.Size > MaxFileSize {
		return fmt.Errorf("size %d out of range", f.Size)
	}
	for _, s := range []string{f.ContentType, f.ContentEncoding, f.ContentLanguage, f.ContentDisposition, f.CacheControl} {
		if !isHeaderValue(s) {
			return errors.New("a content property is not printable ASCII")
		}
	}
	if len(f.Metadata) > maxMetadataEntries {
		return fmt.Errorf("%d metadata entries, more than %d", len(f.Metadata), maxMetadataEntries)
	}
	for k, v := range f.Metadata {
		if !isIdentifier(k) || !isHeaderValue(v) {
			return errors.New("a metadata name is not an identifier or its value not printable ASCII")
		}
	}
	return nil
}

// isHeaderValue reports printable ASCII (space and tab included): content
// properties and metadata travel as HTTP headers, which the service signs
// and stores as ASCII.
func isHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c > 0x7e {
			return false
		}
	}
	return true
}

// isIdentifier reports an ASCII C# identifier, the service's rule for
// metadata names.
func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// appendString appends a uvarint length and the bytes.
func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendFileHeader encodes f's header (the part before its content).
func appendFileHeader(b []byte, f File) []byte {
	b = appendString(b, f.Path)
	b = binary.AppendUvarint(b, uint64(f.Size))
	for _, s := range []string{f.ContentType, f.ContentEncoding, f.ContentLanguage, f.ContentDisposition, f.CacheControl} {
		b = appendString(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(f.Metadata)))
	for _, k := range slices.Sorted(maps.Keys(f.Metadata)) {
		b = appendString(b, k)
		b = appendString(b, f.Metadata[k])
	}
	return b
}
