// Package storetest is the conformance suite of [byok.Store]: the
// ByokSettings table (byok/aztable) and [byok.MemStore] pass the same tests.
package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/byok"
)

// Run runs the suite; newStore returns an empty store for each test.
func Run(t *testing.T, newStore func(t *testing.T) byok.Store) {
	t.Run("RoundTrip", func(t *testing.T) { roundTrip(t, newStore(t)) })
	t.Run("Conflicts", func(t *testing.T) { conflicts(t, newStore(t)) })
}

func roundTrip(t *testing.T, s byok.Store) {
	ctx := context.Background()

	got, err := s.Get(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if got.RowETag != "" || got.Version != 0 || got.Enabled || got.Tenant != "acme" {
		t.Fatalf("absent record = %+v, want zero record of acme", got)
	}

	now := time.Date(2026, 11, 26, 10, 0, 0, 123456789, time.UTC)
	want := byok.Record{
		Tenant: "acme", Enabled: true, Version: 1,
		Settings: byok.Settings{KeyVaultName: "contoso-kv", KeyName: "k", TenantID: "18a5c4b2-84a8-4acb-8db8-fc7073207415",
			KeyVersion: "0123456789abcdef0123456789abcdef", FallbackToPlatformKey: true},
		KeyID: "https://contoso-kv.vault.azure.net/keys/k/0123456789abcdef0123456789abcdef", KeyType: "RSA", KeySize: 3072,
		EnabledAt: now, LastCheck: &byok.Check{At: now, OK: false, Code: "KeyDisabled", Message: "m"}, DegradedSince: now,
	}
	put, err := s.Put(ctx, withFields(got, want))
	if err != nil {
		t.Fatal(err)
	}
	read, err := s.Get(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if read.RowETag == "" || read.RowETag != put.RowETag {
		t.Fatalf("etag after put %q, after get %q", put.RowETag, read.RowETag)
	}
	read.RowETag, want.RowETag = "", ""
	if !recordsEqual(read, want) {
		t.Fatalf("read back %+v\nwant %+v", read, want)
	}

	list := enabled(t, s)
	if len(list) != 1 || list[0].Tenant != "acme" || list[0].RowETag != put.RowETag {
		t.Fatalf("Enabled = %+v, want acme with etag %q", list, put.RowETag)
	}
}

func conflicts(t *testing.T, s byok.Store) {
	ctx := context.Background()

	zero, _ := s.Get(ctx, "acme")
	first, err := s.Put(ctx, withFields(zero, byok.Record{Enabled: true, Version: 1}))
	if err != nil {
		t.Fatal(err)
	}
	// A second creator read the same absent row.
	if _, err := s.Put(ctx, withFields(zero, byok.Record{Enabled: true, Version: 1})); !errors.Is(err, byok.ErrConflict) {
		t.Fatalf("second insert: err = %v, want ErrConflict", err)
	}
	second, err := s.Put(ctx, withFields(first, byok.Record{Enabled: false, Version: 2}))
	if err != nil {
		t.Fatal(err)
	}
	// A writer holding the first row's etag lost.
	if _, err := s.Put(ctx, withFields(first, byok.Record{Enabled: true, Version: 2})); !errors.Is(err, byok.ErrConflict) {
		t.Fatalf("stale update: err = %v, want ErrConflict", err)
	}
	list := enabled(t, s)
	if len(list) != 0 {
		t.Fatalf("Enabled after disable = %+v, want none", list)
	}
	if got, _ := s.Get(ctx, "acme"); got.Version != second.Version || got.Enabled {
		t.Fatalf("stored %+v, want version 2 disabled", got)
	}
}

// withFields returns f with r's tenant and row ETag: the record as if f had
// been computed from r.
func withFields(r, f byok.Record) byok.Record {
	f.Tenant, f.RowETag = r.Tenant, r.RowETag
	return f
}

func recordsEqual(a, b byok.Record) bool {
	ac, bc := a.LastCheck, b.LastCheck
	a.LastCheck, b.LastCheck = nil, nil
	if (ac == nil) != (bc == nil) || (ac != nil && (!ac.At.Equal(bc.At) || ac.OK != bc.OK || ac.Code != bc.Code || ac.Message != bc.Message)) {
		return false
	}
	return a.Settings == b.Settings && a.Tenant == b.Tenant && a.Enabled == b.Enabled && a.Version == b.Version &&
		a.KeyID == b.KeyID && a.KeyType == b.KeyType && a.KeySize == b.KeySize &&
		a.EnabledAt.Equal(b.EnabledAt) && a.DegradedSince.Equal(b.DegradedSince)
}

// enabled collects s.Enabled.
func enabled(t *testing.T, s byok.Store) []byok.Record {
	t.Helper()
	var out []byok.Record
	for rec, err := range s.Enabled(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	return out
}
