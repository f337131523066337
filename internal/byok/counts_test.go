package byok

import (
	"context"
	"sync"
	"testing"
)

// The status carries the backups' counts for the configured key's current
// version, and the monitor logs how many backups sit on older versions.
func TestStatusBackupCountsAndMonitorLog(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	counter := BackupCountFunc(func(_ context.Context, tenant, keyID string) (BackupCounts, error) {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, tenant+" "+keyID)
		return BackupCounts{Customer: 5, Platform: 2, OlderCustomerKeys: 3}, nil
	})
	e := newEnv(t, envOptions{backups: counter})
	kid := e.vault("acme-kv", 2048)
	st, err := e.svc.Status(bg(), "acme")
	must(t, err)
	if st.Backups == nil || *st.Backups != (BackupCounts{5, 2, 3}) {
		t.Fatalf("backups = %+v", st.Backups)
	}
	_, err = e.svc.Configure(bg(), "acme", settingsFor("acme-kv"), "")
	must(t, err)
	st, err = e.svc.Status(bg(), "acme")
	must(t, err)
	if asked[len(asked)-1] != "acme "+kid {
		t.Fatalf("counted against %q, want the current key %s", asked[len(asked)-1], kid)
	}
	if _, err := e.svc.Monitor(bg()); err != nil {
		t.Fatal(err)
	}
	recs := e.logs.Records("backups on older customer key versions")
	if len(recs) != 1 || recs[0]["olderCustomerKeys"] != float64(3) || recs[0]["tenant"] != "acme" {
		t.Fatalf("monitor log = %v", recs)
	}

	// Without a counter the status has no backups field.
	plain := newEnv(t, envOptions{})
	st, err = plain.svc.Status(bg(), "acme")
	must(t, err)
	if st.Backups != nil {
		t.Fatal("backups without a counter")
	}
}
