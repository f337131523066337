package catalog

import (
	"crypto/rand"
	"encoding/base32"
	"time"
)

// idTimeLayout is the time part of an id: UTC, millisecond precision, fixed
// width, so that ids sort lexicographically in time order (Table Storage
// returns a partition in RowKey order) and stay readable in logs.
const idTimeLayout = "20060102T150405.000Z"

// idRandLen is the length of the random suffix: 16 base32 characters carry
// 80 bits, enough that two ids minted in the same millisecond never collide
// in practice.
const idRandLen = 16

// idLen is the exact length of every id NewID returns.
const idLen = len(idTimeLayout) + 1 + idRandLen

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns a new backup or restore id for the instant now: the UTC time
// to the millisecond, a hyphen and 16 random base32 characters, e.g.
// "20260102T030405.123Z-k3j5abcdqrst2345". Ids are URL-safe, 37 characters
// long and sort by time. Ids minted in the same millisecond are ordered
// randomly.
func NewID(now time.Time) string {
	var b [10]byte
	// crypto/rand.Read never returns an error (Go 1.24+); it crashes the
	// program instead of returning predictable bytes.
	_, _ = rand.Read(b[:])
	return now.UTC().Format(idTimeLayout) + "-" + idEncoding.EncodeToString(b[:])
}

// ValidID reports whether s is an id the contract allows (§3: URL-safe, at
// most 64 characters): 1–64 of A–Z a–z 0–9 - . _ ~, not starting with a dot
// (so "." and ".." never become blob path segments). The ids this service
// mints ([NewID]) are a subset that also sorts by time; ids minted by other
// programs, e.g. a backup-jobs message enqueued by an operator's script, are
// accepted too. Every id that arrives from a route, a query string or a queue
// message is checked with it before it reaches storage, so an id is always
// safe as a Table RowKey and a blob path segment.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 64 || s[0] == '.' {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// validMintedID reports whether s has exactly the shape NewID produces.
func validMintedID(s string) bool {
	if len(s) != idLen || s[len(idTimeLayout)] != '-' {
		return false
	}
	ts := s[:len(idTimeLayout)]
	t, err := time.Parse(idTimeLayout, ts)
	if err != nil || t.Format(idTimeLayout) != ts {
		return false
	}
	for _, c := range []byte(s[len(idTimeLayout)+1:]) {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// IDTime returns the instant encoded in an id minted by [NewID]; false for
// other ids.
func IDTime(id string) (time.Time, bool) {
	if !validMintedID(id) {
		return time.Time{}, false
	}
	t, err := time.Parse(idTimeLayout, id[:len(idTimeLayout)])
	return t, err == nil
}
