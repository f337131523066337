package jobqueue_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/jobqueue"
)

// TestEncode: the queue text is the message's JSON in base64 (what the
// host's messageEncoding expects), decodes back to the message, and an
// invalid or oversized message is refused before any queue sees it.
func TestEncode(t *testing.T) {
	want := jobqueue.BackupJob{Tenant: "acme", BackupID: bid, Reason: catalog.ReasonSchedule, RequestedAt: at}
	text, err := jobqueue.Encode("backup-jobs", want)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		t.Fatalf("queue text is not base64: %v", err)
	}
	if got, err := jobqueue.DecodeBackupJob(raw); err != nil || got != want {
		t.Fatalf("decoded %+v, %v; want %+v", got, err, want)
	}
	for _, msg := range []any{
		jobqueue.BackupJob{Tenant: "acme", BackupID: "no/pe", Reason: catalog.ReasonManual, RequestedAt: at},
		jobqueue.RestoreJob{Tenant: "", RestoreID: catalog.NewID(at)},
		map[string]string{"big": strings.Repeat("x", jobqueue.MaxMessageSize)},
	} {
		if _, err := jobqueue.Encode("q", msg); !errors.Is(err, jobqueue.ErrInvalidMessage) {
			t.Errorf("Encode(%T) = %v, want ErrInvalidMessage", msg, err)
		}
	}
}
