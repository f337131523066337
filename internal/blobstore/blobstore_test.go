package blobstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/blobstore"
	"github.com/twinit/byok-backup/internal/blobstore/mem"
	"github.com/twinit/byok-backup/internal/catalog"
)

func TestLayout(t *testing.T) {
	id := catalog.NewID(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	l, err := blobstore.NewLayout("acme", id, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := l.Manifest(), "acme/"+id+"/manifest"; got != want {
		t.Errorf("Manifest = %q, want %q", got, want)
	}
	if got, want := l.Chunk("records", 7), "acme/"+id+"/chunks/records/0000000007"; got != want {
		t.Errorf("Chunk = %q, want %q", got, want)
	}
	a, err := blobstore.NewLayout("acme", id, "att-1")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.Manifest(), "acme/"+id+"/att-1/manifest"; got != want || a.BackupPrefix() != l.Prefix() {
		t.Errorf("attempt Manifest = %q, want %q; BackupPrefix %q", got, want, a.BackupPrefix())
	}
	// Zero padding makes lexicographic order index order.
	var names []string
	for _, i := range []int64{0, 1, 9, 10, 99, 100, 12345, 9_999_999_999} {
		names = append(names, l.Chunk("files", i))
	}
	if !slices.IsSorted(names) {
		t.Errorf("chunk names do not sort by index: %v", names)
	}
	for _, c := range []struct{ tenant, id, attempt string }{
		{"Acme", id, ""}, {"acme", "../x", ""}, {"acme", id, "a/b"}, {"", id, ""}, {"acme", id, strings.Repeat("a", 65)},
	} {
		if _, err := blobstore.NewLayout(c.tenant, c.id, c.attempt); err == nil {
			t.Errorf("NewLayout(%q, %q, %q) accepted", c.tenant, c.id, c.attempt)
		}
	}
	for _, bad := range []func(){func() { l.Chunk("Bad/stream", 0) }, func() { l.Chunk("records", -1) }} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("invalid stream or index did not panic")
				}
			}()
			bad()
		}()
	}
}

// flaky is a function-field fake: it fails the first `fails` calls of each
// operation with err, then defers to the in-memory store.
type flaky struct {
	*mem.Store
	fails int
	err   error
	calls map[string]int
}

func (f *flaky) fail(op string) error {
	f.calls[op]++
	if f.calls[op] <= f.fails {
		return f.err
	}
	return nil
}

func (f *flaky) PutBlob(ctx context.Context, name string, data []byte) error {
	if err := f.fail("put"); err != nil {
		return err
	}
	return f.Store.PutBlob(ctx, name, data)
}

func (f *flaky) GetBlob(ctx context.Context, name string) ([]byte, error) {
	if err := f.fail("get"); err != nil {
		return nil, err
	}
	return f.Store.GetBlob(ctx, name)
}

// List fails after delivering the first blob, like a listing cut off
// between pages.
func (f *flaky) List(ctx context.Context, prefix string, fn func(blobstore.Info) error) error {
	delivered := 0
	return f.Store.List(ctx, prefix, func(i blobstore.Info) error {
		if delivered == 1 {
			if err := f.fail("list"); err != nil {
				return err
			}
		}
		delivered++
		return fn(i)
	})
}

func (f *flaky) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	if err := f.fail("delete"); err != nil {
		return 0, err
	}
	return f.Store.DeletePrefix(ctx, prefix)
}

var errTransient = fmt.Errorf("server busy: %w", blobstore.ErrTransient)

func fast(attempts int) *blobstore.RetryOptions {
	return &blobstore.RetryOptions{MaxAttempts: attempts, BaseDelay: time.Microsecond, MaxDelay: time.Millisecond}
}

func TestRetryTransient(t *testing.T) {
	f := &flaky{Store: mem.New(), fails: 2, err: errTransient, calls: map[string]int{}}
	r := blobstore.NewRetry(f, fast(3))
	ctx := t.Context()
	for _, n := range []string{"p/a", "p/b", "p/c"} {
		f.calls["put"] = 0
		if err := r.PutBlob(ctx, n, []byte(n)); err != nil {
			t.Fatalf("put after 2 transient failures: %v", err)
		}
	}
	if got, err := r.GetBlob(ctx, "p/b"); err != nil || string(got) != "p/b" {
		t.Fatalf("get: %q, %v", got, err)
	}
	var listed []string
	if err := r.List(ctx, "p/", func(i blobstore.Info) error { listed = append(listed, i.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(listed, []string{"p/a", "p/b", "p/c"}) {
		t.Fatalf("a retried listing delivered %v; want each blob once", listed)
	}
	if n, err := r.DeletePrefix(ctx, "p/"); err != nil || n != 3 {
		t.Fatalf("delete: %d, %v", n, err)
	}
	if f.calls["get"] != 3 || f.calls["delete"] != 3 {
		t.Fatalf("calls %v; want 3 gets and 3 deletes", f.calls)
	}
}

func TestRetryGivesUp(t *testing.T) {
	f := &flaky{Store: mem.New(), fails: 100, err: errTransient, calls: map[string]int{}}
	var logs bytes.Buffer
	opts := fast(4)
	opts.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	err := blobstore.NewRetry(f, opts).PutBlob(t.Context(), "x", nil)
	if !blobstore.IsTransient(err) || f.calls["put"] != 4 {
		t.Fatalf("got %v after %d calls; want the errTransient error after MaxAttempts=4", err, f.calls["put"])
	}
	if n := strings.Count(logs.String(), `"msg":"retrying blob storage operation"`); n != 3 {
		t.Fatalf("%d retry warnings logged, want 3:\n%s", n, logs.String())
	}
}

func TestRetryPermanentNotRetried(t *testing.T) {
	perm := errors.New("403 forbidden")
	for _, err := range []error{perm, fmt.Errorf("x: %w", blobstore.ErrNotFound)} {
		f := &flaky{Store: mem.New(), fails: 1, err: err, calls: map[string]int{}}
		got := blobstore.NewRetry(f, fast(5)).PutBlob(t.Context(), "x", nil)
		if !errors.Is(got, err) || f.calls["put"] != 1 {
			t.Fatalf("%v: got %v after %d calls; want it returned after 1", err, got, f.calls["put"])
		}
	}
	// A caller's own error stops a listing without retries.
	f := &flaky{Store: mem.New(), calls: map[string]int{}}
	_ = f.Store.PutBlob(t.Context(), "a", nil)
	stop := fmt.Errorf("caller: %w", blobstore.ErrTransient) // even if it looks errTransient
	calls := 0
	if err := blobstore.NewRetry(f, fast(5)).List(t.Context(), "", func(blobstore.Info) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("List: %v after %d calls", err, calls)
	}
}

func TestRetryStopsOnCancel(t *testing.T) {
	f := &flaky{Store: mem.New(), fails: 100, err: errTransient, calls: map[string]int{}}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := blobstore.NewRetry(f, &blobstore.RetryOptions{MaxAttempts: 100, BaseDelay: time.Hour}).PutBlob(ctx, "x", nil)
	if !blobstore.IsTransient(err) || f.calls["put"] != 1 {
		t.Fatalf("cancelled: %v after %d calls; want 1 call", err, f.calls["put"])
	}
}
