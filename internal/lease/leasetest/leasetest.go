// Package leasetest is the conformance suite every [lease.Table] must pass:
// the in-memory table (lease/mem) and the Table Storage one against Azurite
// run the same tests, through [lease.Manager], so that tests of the services
// on the in-memory table prove what they would against Azure.
package leasetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/lease"
	"github.com/twinit/byok-backup/internal/testing/logtest"
)

// Run runs the suite. open may return the same table every time: each test
// uses its own tenant names.
func Run(t *testing.T, open func(t *testing.T) lease.Table) {
	tests := []struct {
		name string
		fn   func(t *testing.T, tbl lease.Table)
	}{
		{"TableCompareAndSwap", testTableCompareAndSwap},
		{"AcquireRace", testAcquireRace},
		{"ExpiryLetsSecondHolderIn", testExpiryLetsSecondHolderIn},
		{"ReleaseAndReacquire", testReleaseAndReacquire},
		{"RenewExtends", testRenewExtends},
		{"ScopesAreIndependent", testScopesAreIndependent},
		{"HoldRenewsAndReportsLoss", testHoldRenewsAndReportsLoss},
		{"HoldStopWithoutLoss", testHoldStopWithoutLoss},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// clock is a settable clock shared by a test's managers.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func manager(t *testing.T, tbl lease.Table, opts *lease.Options) *lease.Manager {
	t.Helper()
	m := lease.NewWith(tbl, opts)
	if err := m.CreateTable(t.Context()); err != nil {
		t.Fatal(err)
	}
	return m
}

func tenant(t *testing.T) string {
	return strings.ToLower(strings.NewReplacer("/", "-", "_", "-", "=", "-").Replace(t.Name()))
}

// testTableCompareAndSwap holds a Table to the contract Manager relies on:
// insert only if absent, replace and delete only with the current etag.
func testTableCompareAndSwap(t *testing.T, tbl lease.Table) {
	ctx := t.Context()
	if err := tbl.Create(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Create(ctx); err != nil {
		t.Fatalf("second Create: %v", err)
	}
	tn := tenant(t)
	if _, _, err := tbl.Get(ctx, "s", tn); !errors.Is(err, lease.ErrRowNotFound) {
		t.Fatalf("Get of a missing row: %v; want ErrRowNotFound", err)
	}
	r1 := lease.Row{Holder: "a", Expires: t0}
	e1, err := tbl.Add(ctx, "s", tn, r1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.Add(ctx, "s", tn, r1); !errors.Is(err, lease.ErrRowExists) {
		t.Fatalf("second Add: %v; want ErrRowExists", err)
	}
	got, etag, err := tbl.Get(ctx, "s", tn)
	if err != nil || got.Holder != "a" || !got.Expires.Equal(t0) || etag != e1 {
		t.Fatalf("Get = %+v, %q, %v; want %+v, %q", got, etag, err, r1, e1)
	}
	e2, err := tbl.Replace(ctx, "s", tn, lease.Row{Holder: "b", Expires: t0.Add(time.Minute)}, e1)
	if err != nil {
		t.Fatal(err)
	}
	if e2 == e1 {
		t.Fatal("Replace kept the etag")
	}
	if _, err := tbl.Replace(ctx, "s", tn, r1, e1); !errors.Is(err, lease.ErrRowChanged) {
		t.Fatalf("Replace with a stale etag: %v; want ErrRowChanged", err)
	}
	if err := tbl.Delete(ctx, "s", tn, e1); !errors.Is(err, lease.ErrRowChanged) {
		t.Fatalf("Delete with a stale etag: %v; want ErrRowChanged", err)
	}
	if _, _, err := tbl.Get(ctx, "other", tn); !errors.Is(err, lease.ErrRowNotFound) {
		t.Fatalf("Get in another scope: %v; want ErrRowNotFound", err)
	}
	if err := tbl.Delete(ctx, "s", tn, e2); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Delete(ctx, "s", tn, e2); !errors.Is(err, lease.ErrRowChanged) {
		t.Fatalf("Delete of a deleted row: %v; want ErrRowChanged", err)
	}
	if _, err := tbl.Replace(ctx, "s", tn, r1, e2); !errors.Is(err, lease.ErrRowChanged) {
		t.Fatalf("Replace of a deleted row: %v; want ErrRowChanged", err)
	}
}

func testAcquireRace(t *testing.T, tbl lease.Table) {
	m := manager(t, tbl, nil)
	tn := tenant(t)
	const n = 6
	var wg sync.WaitGroup
	leases := make([]*lease.Lease, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			leases[i], errs[i] = m.Acquire(t.Context(), tn, fmt.Sprintf("worker-%d", i), time.Minute)
		}()
	}
	wg.Wait()
	winner := ""
	for i := range n {
		if errs[i] == nil {
			if winner != "" {
				t.Fatalf("both %s and %s hold the lease", winner, leases[i].Holder)
			}
			winner = leases[i].Holder
		}
	}
	if winner == "" {
		t.Fatalf("nobody won: %v", errs)
	}
	for i, err := range errs {
		var he *lease.HeldError
		if err != nil && (!errors.As(err, &he) || !errors.Is(err, lease.ErrHeld) || he.Holder != winner || he.Tenant != tn) {
			t.Fatalf("loser %d: %v; want a HeldError naming %s", i, err, winner)
		}
	}
}

func testExpiryLetsSecondHolderIn(t *testing.T, tbl lease.Table) {
	ca, cb := &clock{t: t0}, &clock{t: t0}
	a := manager(t, tbl, &lease.Options{Now: ca.Now})
	b := manager(t, tbl, &lease.Options{Now: cb.Now})
	tn := tenant(t)
	la, err := a.Acquire(t.Context(), tn, "a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !la.Expires().Equal(t0.Add(time.Minute)) {
		t.Fatalf("Expires = %v, want now+ttl", la.Expires())
	}
	cb.Set(t0.Add(59 * time.Second))
	_, err = b.Acquire(t.Context(), tn, "b", time.Minute)
	var he *lease.HeldError
	if !errors.As(err, &he) || he.Holder != "a" || !he.Expires.Equal(t0.Add(time.Minute)) {
		t.Fatalf("before expiry: %v; want HeldError by a until %v", err, t0.Add(time.Minute))
	}
	cb.Set(t0.Add(61 * time.Second))
	lb, err := b.Acquire(t.Context(), tn, "b", time.Minute)
	if err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	// The crashed holder comes back: it lost the lease and must learn so.
	if err := a.Renew(t.Context(), la, time.Minute); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("renew after takeover: %v; want ErrLost", err)
	}
	if err := a.Release(t.Context(), la); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("release after takeover: %v; want ErrLost", err)
	}
	// ... and its failed release did not free b's lease.
	if _, err := a.Acquire(t.Context(), tn, "a", time.Minute); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("a re-acquires b's lease: %v; want ErrHeld", err)
	}
	if err := b.Release(t.Context(), lb); err != nil {
		t.Fatal(err)
	}
}

func testReleaseAndReacquire(t *testing.T, tbl lease.Table) {
	m := manager(t, tbl, &lease.Options{Now: (&clock{t: t0}).Now})
	tn := tenant(t)
	l, err := m.Acquire(t.Context(), tn, "a", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	again, err := m.Acquire(t.Context(), tn, "a", time.Hour)
	if err != nil {
		t.Fatalf("same holder re-acquiring: %v", err)
	}
	if err := m.Release(t.Context(), l); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("release with the superseded handle: %v; want ErrLost", err)
	}
	if err := m.Release(t.Context(), again); err != nil {
		t.Fatal(err)
	}
	if err := m.Release(t.Context(), again); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("double release: %v; want ErrLost", err)
	}
	if err := m.Renew(t.Context(), again, time.Hour); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("renew after release: %v; want ErrLost", err)
	}
	if _, err := m.Acquire(t.Context(), tn, "b", time.Hour); err != nil {
		t.Fatalf("acquire after release (no waiting for expiry): %v", err)
	}
}

func testRenewExtends(t *testing.T, tbl lease.Table) {
	ca, cb := &clock{t: t0}, &clock{t: t0}
	a := manager(t, tbl, &lease.Options{Now: ca.Now})
	b := manager(t, tbl, &lease.Options{Now: cb.Now})
	tn := tenant(t)
	l, err := a.Acquire(t.Context(), tn, "a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ca.Set(t0.Add(50 * time.Second))
	if err := a.Renew(t.Context(), l, time.Minute); err != nil {
		t.Fatal(err)
	}
	if !l.Expires().Equal(t0.Add(110 * time.Second)) {
		t.Fatalf("Expires after renew = %v", l.Expires())
	}
	cb.Set(t0.Add(90 * time.Second)) // past the first expiry, before the renewed one
	if _, err := b.Acquire(t.Context(), tn, "b", time.Minute); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("acquire of a renewed lease: %v; want ErrHeld", err)
	}
}

func testScopesAreIndependent(t *testing.T, tbl lease.Table) {
	backup := manager(t, tbl, nil)
	restore := manager(t, tbl, &lease.Options{Scope: "restore"})
	tn := tenant(t)
	if _, err := backup.Acquire(t.Context(), tn, "a", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := restore.Acquire(t.Context(), tn, "b", time.Minute); err != nil {
		t.Fatalf("a restore lease blocked by a backup lease: %v", err)
	}
	if _, err := backup.Acquire(t.Context(), tn, "c", time.Minute); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("second backup lease: %v; want ErrHeld", err)
	}
}

func testHoldRenewsAndReportsLoss(t *testing.T, tbl lease.Table) {
	var logs logtest.Buffer
	ca := &clock{t: t0}
	a := manager(t, tbl, &lease.Options{Now: ca.Now, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	tn := tenant(t)
	l, err := a.Acquire(t.Context(), tn, "a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ca.Set(t0.Add(30 * time.Second))
	held, stop := a.Hold(t.Context(), l, time.Minute, 10*time.Millisecond)
	waitFor(t, func() bool { return l.Expires().Equal(t0.Add(90 * time.Second)) }, "a background renewal")

	// Another holder whose clock says the lease expired takes it over.
	// a renews every 10 ms, so b's conditional write can lose the ETag race
	// to a renewal (then b rightly sees the lease held): b tries until its
	// write lands between two renewals.
	b := manager(t, tbl, &lease.Options{Now: func() time.Time { return t0.Add(time.Hour) }})
	for i := 0; ; i++ {
		_, err := b.Acquire(t.Context(), tn, "b", time.Minute)
		if err == nil {
			break
		}
		if !errors.Is(err, lease.ErrHeld) || i == 200 {
			t.Fatal(err)
		}
	}
	select {
	case <-held.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the held context was not cancelled after the lease was lost")
	}
	if !errors.Is(context.Cause(held), lease.ErrLost) {
		t.Fatalf("cause %v; want ErrLost", context.Cause(held))
	}
	if err := stop(); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("stop() = %v; want ErrLost", err)
	}
	if !strings.Contains(logs.String(), `"msg":"lease lost"`) {
		t.Fatalf("loss not logged: %s", logs.String())
	}
}

func testHoldStopWithoutLoss(t *testing.T, tbl lease.Table) {
	m := manager(t, tbl, nil)
	l, err := m.Acquire(t.Context(), tenant(t), "a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	held, stop := m.Hold(t.Context(), l, time.Minute, 5*time.Millisecond)
	first := l.Expires()
	waitFor(t, func() bool { return l.Expires().After(first) }, "a background renewal")
	if err := stop(); err != nil {
		t.Fatalf("stop() = %v; want nil", err)
	}
	if held.Err() == nil || errors.Is(context.Cause(held), lease.ErrLost) {
		t.Fatalf("after stop: err %v cause %v", held.Err(), context.Cause(held))
	}
	if err := m.Release(t.Context(), l); err != nil {
		t.Fatalf("release after Hold: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
