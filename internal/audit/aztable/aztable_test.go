package aztable_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/twinit/byok-backup/internal/audit"
	"github.com/twinit/byok-backup/internal/audit/aztable"
	"github.com/twinit/byok-backup/internal/credential"
	"github.com/twinit/byok-backup/internal/devstack/azurite"
	"github.com/twinit/byok-backup/internal/devstack/kvemu"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keywrap"
	"github.com/twinit/byok-backup/internal/keywrap/keyvault"
)

var storage *azurite.Instance

func TestMain(m *testing.M) { azurite.RunTests(m, &storage) }

var tableSeq atomic.Int64

// newLog returns a audit.Log over a fresh table (one per test keeps tests apart).
func newLog(t *testing.T, clock func() time.Time) (*audit.Log, *aztables.Client) {
	t.Helper()
	svc, err := aztables.NewServiceClientFromConnectionString(storage.ConnectionString(),
		&aztables.ClientOptions{ClientOptions: azcore.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1}}})
	if err != nil {
		t.Fatal(err)
	}
	c := svc.NewClient(fmt.Sprintf("KeyAudit%d%d", time.Now().UnixNano()%1e6, tableSeq.Add(1)))
	l := audit.New(aztable.New(c), clock)
	if err := l.EnsureTable(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := l.EnsureTable(t.Context()); err != nil {
		t.Fatalf("EnsureTable is not idempotent: %v", err)
	}
	return l, c
}

func TestRecordAndList(t *testing.T) {
	at := time.Date(2026, 5, 1, 2, 3, 4, 5000000, time.UTC)
	l, _ := newLog(t, func() time.Time { return at })
	in := []audit.Entry{
		{Tenant: "acme", Operation: audit.Wrap, KeyID: "https://contoso-kv.vault.azure.net/keys/k/78deebed173b48e48f55abf87ed4cf71",
			KeySource: "customer", Outcome: audit.OutcomeOK, BackupID: "b1", Duration: 1500 * time.Millisecond},
		{Tenant: "acme", Operation: audit.Unwrap, KeyID: "https://platform-kv.vault.azure.net/keys/p/0123456789abcdef0123456789abcdef",
			KeySource: "platform", Outcome: "KeyAccessDenied", RestoreID: "r1", Duration: 3 * time.Millisecond,
			At: at.Add(time.Second)},
		{Tenant: "globex", Operation: audit.Validate, KeySource: "customer", Outcome: "KeyNotFound"},
	}
	var rowKeys []string
	for _, e := range in {
		got, err := l.Record(t.Context(), e)
		if err != nil {
			t.Fatal(err)
		}
		rowKeys = append(rowKeys, got.RowKey)
	}
	rows, err := l.List(t.Context(), "acme", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("rows = %+v", rows)
	}
	for i, want := range in[:2] {
		if want.At.IsZero() {
			want.At = at
		}
		want.RowKey = rowKeys[i]
		if rows[i] != want {
			t.Errorf("row %d = %+v\nwant %+v", i, rows[i], want)
		}
	}
	if !(rowKeys[0] < rowKeys[1]) || !strings.HasPrefix(rowKeys[0], "20260501T020304.005000000Z-") {
		t.Fatalf("row keys not time ordered: %v", rowKeys)
	}
	// Same instant, still unique.
	a, err := l.Record(t.Context(), audit.Entry{Tenant: "dup", Operation: audit.Wrap, Outcome: audit.OutcomeOK})
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Record(t.Context(), audit.Entry{Tenant: "dup", Operation: audit.Wrap, Outcome: audit.OutcomeOK})
	if err != nil || a.RowKey == b.RowKey {
		t.Fatalf("same-instant rows: %q %q %v", a.RowKey, b.RowKey, err)
	}
	if rows, _ := l.List(t.Context(), "globex", 0); len(rows) != 1 || rows[0].Operation != audit.Validate {
		t.Fatalf("globex rows %+v", rows)
	}
}

func TestUnscopedTenant(t *testing.T) {
	l, _ := newLog(t, nil)
	for _, tenant := range []string{"", "Bad Tenant", "a'b"} {
		e, err := l.Record(t.Context(), audit.Entry{Tenant: tenant, Operation: audit.Wrap, Outcome: audit.OutcomeOK})
		if err != nil || e.Tenant != audit.UnscopedTenant {
			t.Fatalf("tenant %q recorded as %q: %v", tenant, e.Tenant, err)
		}
	}
	if rows, err := l.List(t.Context(), audit.UnscopedTenant, 0); err != nil || len(rows) != 3 {
		t.Fatalf("unscoped rows %d, %v", len(rows), err)
	}
}

const (
	appID  = "4ab9f542-0305-4d62-94c9-69786fb5d1ec"
	entra  = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	vault  = "contoso-kv"
	keyNm  = "twinit-backup"
	tenant = "acme"
)

func keyVault(t *testing.T) (*kvemu.Emulator, *keyvault.Wrapper, keywrap.Ref) {
	t.Helper()
	emu := kvemu.TestStart(t)
	creds, err := credential.New(credential.Options{Mode: credential.Emulator, AppClientID: appID, PlatformMode: credential.Emulator})
	if err != nil {
		t.Fatal(err)
	}
	w, err := keyvault.New(keyvault.Options{Credentials: creds, ApplicationID: appID, CAPEM: emu.CAPEM(),
		MaxRetries: 1, RetryDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.CreateVault(vault, entra, kvemu.AccessPolicy); err != nil {
		t.Fatal(err)
	}
	if err := emu.Grant(vault, kvemu.CustomerToken(appID, entra), "get", "wrapKey", "unwrapKey"); err != nil {
		t.Fatal(err)
	}
	if _, err := emu.CreateKey(vault, keyNm, "RSA", 2048, nil); err != nil {
		t.Fatal(err)
	}
	u, err := keywrap.VaultURL(emu.URLTemplate(), vault)
	if err != nil {
		t.Fatal(err)
	}
	return emu, w, keywrap.Ref{Source: keywrap.Customer, VaultURL: u, KeyName: keyNm, TenantID: entra}
}

func TestWrapperAuditsEveryWrapAndUnwrap(t *testing.T) {
	emu, inner, ref := keyVault(t)
	l, table := newLog(t, nil)
	w := audit.NewWrapper(inner, l, nil)
	dk := make([]byte, 32)
	if _, err := rand.Read(dk); err != nil {
		t.Fatal(err)
	}
	bctx := audit.WithScope(t.Context(), audit.Scope{Tenant: tenant, BackupID: "0001-backup"})
	wrapped, err := w.Wrap(bctx, ref, dk)
	if err != nil {
		t.Fatal(err)
	}
	rctx := audit.WithScope(t.Context(), audit.Scope{Tenant: tenant, RestoreID: "0002-restore"})
	if got, err := w.Unwrap(rctx, ref, wrapped); err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("unwrap: %v", err)
	}
	if err := emu.Revoke(vault, kvemu.CustomerToken(appID, entra)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Unwrap(rctx, ref, wrapped); errcode.CodeOf(err) != errcode.KeyAccessDenied {
		t.Fatalf("unwrap after revoke: %v", err)
	}
	if _, err := w.Inspect(bctx, ref); err == nil {
		t.Fatal("inspect after revoke succeeded")
	}

	rows, err := l.List(t.Context(), tenant, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []audit.Entry{
		{Tenant: tenant, Operation: audit.Wrap, KeyID: wrapped.KeyID, KeySource: "customer", Outcome: audit.OutcomeOK, BackupID: "0001-backup"},
		{Tenant: tenant, Operation: audit.Unwrap, KeyID: wrapped.KeyID, KeySource: "customer", Outcome: audit.OutcomeOK, RestoreID: "0002-restore"},
		{Tenant: tenant, Operation: audit.Unwrap, KeyID: wrapped.KeyID, KeySource: "customer", Outcome: "KeyAccessDenied", RestoreID: "0002-restore"},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows = %+v, want %d (inspect is not audited)", rows, len(want))
	}
	for i := range want {
		got := rows[i]
		if got.Duration < 0 || got.At.IsZero() || got.At.After(time.Now().Add(time.Minute)) {
			t.Errorf("row %d duration %v at %v", i, got.Duration, got.At)
		}
		got.Duration, got.At, got.RowKey = 0, time.Time{}, ""
		if got != want[i] {
			t.Errorf("row %d = %+v\nwant %+v", i, got, want[i])
		}
	}
	if !strings.Contains(wrapped.KeyID, "/keys/"+keyNm+"/") || len(wrapped.Version) != 32 {
		t.Fatalf("audited key id %q is not versioned", wrapped.KeyID)
	}

	// No key material in the table, in any encoding.
	pager := table.NewListEntitiesPager(nil)
	var raw []byte
	for pager.More() {
		page, err := pager.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Entities {
			raw = append(raw, e...)
		}
	}
	for _, secret := range [][]byte{dk, wrapped.WrappedKey} {
		for _, enc := range []string{string(secret), hex.EncodeToString(secret), base64.StdEncoding.EncodeToString(secret),
			base64.RawURLEncoding.EncodeToString(secret)} {
			if bytes.Contains(raw, []byte(enc)) {
				t.Fatal("key material found in the audit table")
			}
		}
	}
}

func TestAuditFailureIsLoggedNotFatal(t *testing.T) {
	_, inner, ref := keyVault(t)
	svc, err := aztables.NewServiceClientFromConnectionString(storage.ConnectionString(),
		&aztables.ClientOptions{ClientOptions: azcore.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1}}})
	if err != nil {
		t.Fatal(err)
	}
	missing := audit.New(aztable.New(svc.NewClient("NoSuchAuditTable")), nil) // never created
	var logs bytes.Buffer
	w := audit.NewWrapper(inner, missing, slog.New(slog.NewJSONHandler(&logs, nil)))
	dk := []byte("0123456789abcdef0123456789abcdef")
	wrapped, err := w.Wrap(audit.WithScope(t.Context(), audit.Scope{Tenant: tenant, BackupID: "b"}), ref, dk)
	if err != nil {
		t.Fatalf("wrap failed because of the audit table: %v", err)
	}
	if _, err := w.Unwrap(t.Context(), ref, wrapped); err != nil {
		t.Fatalf("unwrap failed because of the audit table: %v", err)
	}
	if n := strings.Count(logs.String(), "audit: failed to record key use"); n != 2 {
		t.Fatalf("%d audit failure log lines, want 2:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), string(dk)) {
		t.Fatal("data key logged")
	}
}

func TestValidatorRecordsOneValidateRow(t *testing.T) {
	emu, inner, ref := keyVault(t)
	l, _ := newLog(t, nil)
	v := audit.NewValidator(inner, l, nil)
	ctx := audit.WithScope(t.Context(), audit.Scope{Tenant: tenant})
	res := v.Validate(ctx, ref)
	if !res.OK {
		t.Fatalf("validate: %+v", res)
	}
	if err := emu.SetEnabled(vault, keyNm, "", false); err != nil {
		t.Fatal(err)
	}
	res2 := v.Validate(ctx, ref)
	if res2.OK || res2.Err.Code != errcode.KeyDisabled {
		t.Fatalf("validate disabled: %+v", res2)
	}
	rows, err := l.List(t.Context(), tenant, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Operation != audit.Validate || rows[0].Outcome != audit.OutcomeOK || rows[0].KeyID != res.KeyID ||
		rows[1].Operation != audit.Validate || rows[1].Outcome != "KeyDisabled" || rows[1].KeySource != "customer" {
		t.Fatalf("rows = %+v", rows)
	}
}

// A re-wrap's key uses are recorded as rewrap-wrap and rewrap-unwrap with
// the backup id (API.md §7).
func TestWrapperAuditsRewrapOperations(t *testing.T) {
	_, inner, ref := keyVault(t)
	l, _ := newLog(t, nil)
	w := audit.NewWrapper(inner, l, nil)
	dk := make([]byte, 32)
	ctx := audit.WithScope(t.Context(), audit.Scope{Tenant: tenant, BackupID: "0003-backup", Rewrap: true})
	wrapped, err := w.Wrap(ctx, ref, dk)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Unwrap(ctx, ref, wrapped); err != nil {
		t.Fatal(err)
	}
	rows, err := l.List(t.Context(), tenant, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ops []audit.Operation
	for _, r := range rows {
		if r.BackupID != "0003-backup" {
			t.Errorf("row %+v lacks the backup id", r)
		}
		ops = append(ops, r.Operation)
	}
	if len(ops) != 2 || ops[0] != audit.RewrapWrap || ops[1] != audit.RewrapUnwrap {
		t.Fatalf("operations = %v, want [rewrap-wrap rewrap-unwrap]", ops)
	}
}
