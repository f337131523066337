// Package mem is an in-memory [blobstore.Store] for tests of the code built
// on it. It passes blobstore/storetest like the Azure adapter.
package mem

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/twinit/byok-backup/internal/blobstore"
)

var (
	_ blobstore.Store      = (*Store)(nil)
	_ blobstore.IntoGetter = (*Store)(nil)
)

// Store is safe for concurrent use.
type Store struct {
	mu    sync.Mutex
	blobs map[string][]byte
}

// New returns an empty store.
func New() *Store { return &Store{blobs: map[string][]byte{}} }

func (s *Store) PutBlob(ctx context.Context, name string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blobs[name] = slices.Clone(data)
	return nil
}

func (s *Store) GetBlob(ctx context.Context, name string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.blobs[name]
	if !ok {
		return nil, fmt.Errorf("failed to read blob %s: %w", name, blobstore.ErrNotFound)
	}
	return slices.Clone(b), nil
}

// GetBlobInto copies the blob into buf when it fits; a blob over limit is
// refused before anything is copied.
func (s *Store) GetBlobInto(ctx context.Context, name string, buf []byte, limit int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.blobs[name]
	if !ok {
		return nil, fmt.Errorf("failed to read blob %s: %w", name, blobstore.ErrNotFound)
	}
	if int64(len(b)) > limit {
		return nil, blobstore.TooLarge(name, int64(len(b)), limit)
	}
	return append(buf[:0], b...), nil
}

// List snapshots the matching names first, so fn may call the store.
func (s *Store) List(ctx context.Context, prefix string, fn func(blobstore.Info) error) error {
	s.mu.Lock()
	var infos []blobstore.Info
	for name, b := range s.blobs {
		if strings.HasPrefix(name, prefix) {
			infos = append(infos, blobstore.Info{Name: name, Size: int64(len(b))})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(infos, func(a, b blobstore.Info) int { return strings.Compare(a.Name, b.Name) })
	for _, i := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(i); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for name := range s.blobs {
		if strings.HasPrefix(name, prefix) {
			delete(s.blobs, name)
			n++
		}
	}
	return n, nil
}
