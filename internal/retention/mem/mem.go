// Package mem is an in-memory [retention.Store] for tests.
package mem

import (
	"context"
	"sync"

	"github.com/twinit/byok-backup/internal/retention"
)

var _ retention.Store = (*Store)(nil)

// Store is safe for concurrent use; the zero value is empty.
type Store struct {
	mu       sync.Mutex
	policies map[string]retention.Policy
}

func (s *Store) GetPolicy(_ context.Context, tenant string) (retention.Policy, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.policies[tenant]
	return p, ok, nil
}

func (s *Store) PutPolicy(_ context.Context, tenant string, p retention.Policy) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.policies == nil {
		s.policies = map[string]retention.Policy{}
	}
	s.policies[tenant] = p
	return nil
}
