package restore_test

import (
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/jobqueue"
)

// TestRunJobRefusesInvalidJob: RunJob is callable without the edge's
// decoder, so it checks the job itself: an invalid one fails (the host
// then poisons the message) with InvalidRequest, never reaching the
// catalog as "no such restore" (which would acknowledge it silently).
func TestRunJobRefusesInvalidJob(t *testing.T) {
	e := newEnv(t)
	for _, job := range []jobqueue.RestoreJob{
		{Tenant: "Acme!", RestoreID: catalog.NewID(time.Now())},
		{Tenant: "acme", RestoreID: "../x"},
	} {
		err := e.svc.RunJob(t.Context(), job, jobqueue.Delivery{MessageID: "m1", DequeueCount: 1})
		if errcode.CodeOf(err) != errcode.InvalidRequest {
			t.Errorf("RunJob(%+v) = %v, want InvalidRequest", job, err)
		}
	}
	if n := len(e.logs.Records("restore job is invalid; it will end in the poison queue")); n != 2 {
		t.Errorf("%d invalid-job log records, want 2", n)
	}
}
