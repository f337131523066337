// Package lease keeps two backups of one tenant from running at once: a
// per-tenant lease held in a table entity (PartitionKey = scope, RowKey =
// tenant) with a holder and an expiry, changed only with ETag conditions.
//
// # Why a table entity, not a blob lease
//
// A blob lease lasts 15–60 s or forever and says nothing about who holds it.
// An entity carries the holder and expiry in clear, so a refused Acquire can
// report who is running and until when, a crashed holder's lease simply
// expires after any TTL (a backup can take many minutes), and it needs no
// blob to exist. The ETag makes every change a compare-and-swap.
//
// # Clocks
//
// Expiry is written with the acquirer's clock and judged with the next
// acquirer's. Azure hosts keep NTP time, so skew is far below useful TTLs
// (minutes); choose the TTL at least 10× the expected skew and renew at a
// third of it.
package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

var (
	// ErrHeld: someone else holds an unexpired lease. The error is a
	// *HeldError that names the holder.
	ErrHeld = errors.New("lease: held by another holder")
	// ErrLost: the lease was taken over or removed since it was acquired;
	// the holder must stop its work.
	ErrLost = errors.New("lease: lost")
)

// HeldError is a refused Acquire.
type HeldError struct {
	Tenant, Holder string
	Expires        time.Time
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("lease of tenant %s is held by %s until %s", e.Tenant, e.Holder, e.Expires.Format(time.RFC3339))
}

// Unwrap makes errors.Is(err, ErrHeld) true.
func (e *HeldError) Unwrap() error { return ErrHeld }

// Options tune [New]; nil means defaults.
type Options struct {
	// Scope is the PartitionKey, so that one table can hold leases for
	// different purposes (default "backup").
	Scope string
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
	// Logger gets renewal warnings (default: discard).
	Logger *slog.Logger
}

// Manager acquires, renews and releases leases. Safe for concurrent use.
type Manager struct {
	table Table
	scope string
	now   func() time.Time
	log   *slog.Logger
}

// NewWith returns a Manager over any [Table]: the Table Storage one
// (lease/aztable) or the in-memory one (lease/mem). The lease logic is the
// same.
func NewWith(t Table, opts *Options) *Manager {
	m := &Manager{table: t, scope: "backup", now: time.Now, log: slog.New(slog.DiscardHandler)}
	if opts != nil {
		if opts.Scope != "" {
			m.scope = opts.Scope
		}
		if opts.Now != nil {
			m.now = opts.Now
		}
		if opts.Logger != nil {
			m.log = opts.Logger
		}
	}
	return m
}

// CreateTable creates the lease table if it is missing.
func (m *Manager) CreateTable(ctx context.Context) error {
	if err := m.table.Create(ctx); err != nil {
		return fmt.Errorf("failed to create lease table: %w", err)
	}
	return nil
}

// Lease is a held lease. Its methods are safe for concurrent use, so a
// background renewal ([Manager.Hold]) and Release may overlap.
type Lease struct {
	Tenant, Holder string

	mu      sync.Mutex
	expires time.Time
	etag    string
}

// Expires is the expiry written by the last successful acquire or renewal.
func (l *Lease) Expires() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.expires
}

// Acquire takes the tenant's lease for holder until now+ttl. If another
// holder has an unexpired lease it returns a *HeldError (errors.Is ErrHeld).
// The same holder re-acquiring its own lease succeeds.
func (m *Manager) Acquire(ctx context.Context, tenant, holder string, ttl time.Duration) (*Lease, error) {
	// Each round is insert-if-absent or replace-if-unchanged; a lost race
	// re-reads and decides again. Three rounds suffice unless the lease is
	// contended, and then the last reader's view is the answer.
	var last Row
	for range 3 {
		expires := m.now().Add(ttl)
		etag, err := m.table.Add(ctx, m.scope, tenant, Row{Holder: holder, Expires: expires})
		if err == nil {
			return &Lease{Tenant: tenant, Holder: holder, expires: expires, etag: etag}, nil
		}
		if !errors.Is(err, ErrRowExists) {
			return nil, fmt.Errorf("failed to acquire lease of tenant %s: %w", tenant, err)
		}
		cur, curTag, err := m.table.Get(ctx, m.scope, tenant)
		if errors.Is(err, ErrRowNotFound) {
			continue // released meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("failed to read lease of tenant %s: %w", tenant, err)
		}
		last = cur
		if cur.Holder != holder && m.now().Before(cur.Expires) {
			return nil, &HeldError{Tenant: tenant, Holder: cur.Holder, Expires: cur.Expires}
		}
		expires = m.now().Add(ttl)
		etag, err = m.table.Replace(ctx, m.scope, tenant, Row{Holder: holder, Expires: expires}, curTag)
		if err == nil {
			return &Lease{Tenant: tenant, Holder: holder, expires: expires, etag: etag}, nil
		}
		if !errors.Is(err, ErrRowChanged) {
			return nil, fmt.Errorf("failed to take over lease of tenant %s: %w", tenant, err)
		}
	}
	return nil, &HeldError{Tenant: tenant, Holder: last.Holder, Expires: last.Expires}
}

// Renew extends l to now+ttl. ErrLost if another holder took it over or it
// was removed; the holder must stop.
func (m *Manager) Renew(ctx context.Context, l *Lease, ttl time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	expires := m.now().Add(ttl)
	etag, err := m.table.Replace(ctx, m.scope, l.Tenant, Row{Holder: l.Holder, Expires: expires}, l.etag)
	switch {
	case err == nil:
		l.etag, l.expires = etag, expires
		return nil
	case errors.Is(err, ErrRowChanged):
		return fmt.Errorf("failed to renew lease of tenant %s: %w: %w", l.Tenant, ErrLost, err)
	}
	return fmt.Errorf("failed to renew lease of tenant %s: %w", l.Tenant, err)
}

// Release gives l up so the next Acquire need not wait for expiry. ErrLost
// if it was no longer held (harmless: someone else owns it now).
func (m *Manager) Release(ctx context.Context, l *Lease) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := m.table.Delete(ctx, m.scope, l.Tenant, l.etag)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrRowChanged):
		return fmt.Errorf("failed to release lease of tenant %s: %w: %w", l.Tenant, ErrLost, err)
	}
	return fmt.Errorf("failed to release lease of tenant %s: %w", l.Tenant, err)
}

// Hold renews l every `every` (use ttl/3) in the background until stop is
// called or ctx ends. The returned context is cancelled, with cause ErrLost,
// as soon as the lease is lost: when a renewal is refused, or when renewals
// keep failing until the lease has expired. Run the work under that context.
// stop ends the renewals and returns the loss error, or nil.
func (m *Manager) Hold(ctx context.Context, l *Lease, ttl, every time.Duration) (held context.Context, stop func() error) {
	hctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	var lost error
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-hctx.Done():
				return
			case <-tick.C:
			}
			err := m.Renew(hctx, l, ttl)
			if err == nil || hctx.Err() != nil {
				continue
			}
			if errors.Is(err, ErrLost) || !m.now().Before(l.Expires()) {
				if !errors.Is(err, ErrLost) {
					err = fmt.Errorf("%w: renewals failed until expiry: %w", ErrLost, err)
				}
				lost = err
				m.log.ErrorContext(ctx, "lease lost", "tenant", l.Tenant, "holder", l.Holder, "err", err)
				cancel(err)
				return
			}
			m.log.WarnContext(ctx, "lease renewal failed; retrying", "tenant", l.Tenant, "holder", l.Holder, "err", err)
		}
	}()
	return hctx, func() error {
		cancel(context.Canceled)
		<-done
		return lost
	}
}
