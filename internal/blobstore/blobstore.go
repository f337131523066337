// Package blobstore stores the encrypted backups: one blob per chunk plus a
// manifest, in the `backups` container (API.md §3). [Store] is the small
// interface the backup and restore pipelines use; blobstore/azure implements
// it over azblob, blobstore/mem in memory, and blobstore/storetest is the
// conformance suite both pass. [NewRetry] adds retries with backoff for
// errors the adapter classified as transient.
package blobstore

import (
	"context"
	"errors"
	"fmt"
)

// Store holds named blobs. Names are '/'-separated; see [Layout].
type Store interface {
	// PutBlob writes data under name, replacing any blob of that name (a
	// retried upload must succeed). Every blob written is sealed or MAC'd,
	// so readers authenticate it; the Azure adapter relies on TLS in
	// transit and on the MD5 the service stores (azure.Store.PutBlob).
	PutBlob(ctx context.Context, name string, data []byte) error
	// GetBlob reads a whole blob; a missing blob is ErrNotFound.
	GetBlob(ctx context.Context, name string) ([]byte, error)
	// List calls fn for every blob whose name starts with prefix, in
	// lexicographic name order. An error from fn stops the listing and is
	// returned.
	List(ctx context.Context, prefix string, fn func(Info) error) error
	// DeletePrefix deletes every blob whose name starts with prefix and
	// returns how many it deleted. Blobs that vanish meanwhile are not errors.
	DeletePrefix(ctx context.Context, prefix string) (int, error)
}

// IntoGetter is a [Store] that can read a blob into the caller's buffer,
// so a reader of many same-sized blobs (restore's chunks) reuses its
// buffers instead of allocating one per blob, and that refuses a blob
// larger than the caller expects before allocating for it. Use [GetInto].
// It is for sealed (authenticated-encryption) blobs: the caller checks
// every byte it gets, so adapters skip their own transport checksums, and
// the caller reads a blob that fails authentication once more before it
// calls it tampered with (restore's plainStream).
type IntoGetter interface {
	// GetBlobInto reads a whole blob into buf[:0], growing it only if the
	// blob is larger than cap(buf), and returns the filled slice (which
	// aliases buf when it fit); a missing blob is ErrNotFound. A blob of
	// more than limit (≥ 0) bytes is ErrTooLarge, whatever size its
	// properties claim: the store never allocates more than about limit
	// bytes for it, so a hostile or broken store can't exhaust memory.
	GetBlobInto(ctx context.Context, name string, buf []byte, limit int64) ([]byte, error)
}

// GetInto reads blob name, at most limit bytes, into buf with s's
// GetBlobInto when s has one, else with GetBlob (a fresh buffer, checked
// against limit only after the read: every adapter of untrusted storage
// implements IntoGetter).
func GetInto(ctx context.Context, s Store, name string, buf []byte, limit int64) ([]byte, error) {
	if g, ok := s.(IntoGetter); ok {
		return g.GetBlobInto(ctx, name, buf, limit)
	}
	b, err := s.GetBlob(ctx, name)
	if err == nil && int64(len(b)) > limit {
		return nil, TooLarge(name, int64(len(b)), limit)
	}
	return b, err
}

// TooLarge is the error of a blob of size bytes read with a smaller limit.
func TooLarge(name string, size, limit int64) error {
	return fmt.Errorf("blob %s has %d bytes or more, more than the %d expected: %w", name, size, limit, ErrTooLarge)
}

// Info describes a listed blob.
type Info struct {
	Name string
	Size int64
}

var (
	// ErrNotFound: no blob with that name.
	ErrNotFound = errors.New("blobstore: blob not found")
	// ErrTransient marks a failure that may succeed if retried (throttling,
	// timeouts, server errors, broken connections, a body that failed its
	// checksum). Anything not marked is permanent.
	ErrTransient = errors.New("blobstore: transient storage failure")
	// ErrTooLarge: the blob is larger than the reader's limit (permanent).
	ErrTooLarge = errors.New("blobstore: blob larger than expected")
)

// IsNotExist reports whether err says the blob does not exist.
func IsNotExist(err error) bool { return errors.Is(err, ErrNotFound) }

// IsTransient reports whether retrying the operation may succeed.
func IsTransient(err error) bool { return errors.Is(err, ErrTransient) }

// IsTooLarge reports whether err says the blob exceeded the reader's limit.
func IsTooLarge(err error) bool { return errors.Is(err, ErrTooLarge) }
