package audit_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/audit"
)

// table is an in-memory audit.Table: the row logic of Log is tested here,
// the Table Storage one in audit/aztable.
type table struct {
	rows []audit.Entry
	err  error
}

func (t *table) EnsureTable(context.Context) error { return t.err }

func (t *table) Add(_ context.Context, e audit.Entry) error {
	if t.err != nil {
		return t.err
	}
	t.rows = append(t.rows, e)
	return nil
}

func (t *table) List(_ context.Context, tenant string, max int) ([]audit.Entry, error) {
	var out []audit.Entry
	for _, e := range t.rows {
		if e.Tenant == tenant && (max <= 0 || len(out) < max) {
			out = append(out, e)
		}
	}
	return out, t.err
}

func TestRecordStampsRows(t *testing.T) {
	at := time.Date(2026, 5, 1, 2, 3, 4, 5000000, time.FixedZone("x", 3600))
	tb := &table{}
	l := audit.New(tb, func() time.Time { return at })
	a, err := l.Record(t.Context(), audit.Entry{Tenant: "acme", Operation: audit.Wrap, Outcome: audit.OutcomeOK})
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Record(t.Context(), audit.Entry{Tenant: "Bad Tenant", Operation: audit.Unwrap, Outcome: audit.OutcomeOK})
	if err != nil {
		t.Fatal(err)
	}
	if !a.At.Equal(at) || a.At.Location() != time.UTC {
		t.Errorf("At = %v, want %v in UTC", a.At, at)
	}
	if !strings.HasPrefix(a.RowKey, "20260501T010304.005000000Z-") || a.RowKey == b.RowKey {
		t.Errorf("row keys %q %q: want time-ordered and unique", a.RowKey, b.RowKey)
	}
	if b.Tenant != audit.UnscopedTenant {
		t.Errorf("invalid tenant recorded as %q, want %q", b.Tenant, audit.UnscopedTenant)
	}
	if len(tb.rows) != 2 || tb.rows[0] != a || tb.rows[1] != b {
		t.Errorf("stored %+v, want the returned rows", tb.rows)
	}
	tb.err = errors.New("storage down")
	if _, err := l.Record(t.Context(), audit.Entry{Tenant: "acme"}); !errors.Is(err, tb.err) {
		t.Errorf("Record with a failing table = %v, want its error", err)
	}
}
