package jobqueue_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/jobqueue"
)

var (
	at    = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	bid   = catalog.NewID(at)
	valid = `{"tenant":"acme","backupId":"` + bid + `","reason":"schedule","requestedAt":"2026-01-02T03:04:05Z"}`
)

func TestDecodeBackupJob(t *testing.T) {
	j, err := jobqueue.DecodeBackupJob([]byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	want := jobqueue.BackupJob{Tenant: "acme", BackupID: bid, Reason: catalog.ReasonSchedule, RequestedAt: at}
	if j != want {
		t.Fatalf("got %+v, want %+v", j, want)
	}
	// An offset time is accepted and normalised to UTC.
	j, err = jobqueue.DecodeBackupJob([]byte(strings.Replace(valid, "03:04:05Z", "05:04:05+02:00", 1)))
	if err != nil || !j.RequestedAt.Equal(at) || j.RequestedAt.Location() != time.UTC {
		t.Fatalf("offset time: %+v, %v", j, err)
	}
	// Round trip through the encoder.
	b, _ := json.Marshal(want)
	if j, err := jobqueue.DecodeBackupJob(b); err != nil || j != want {
		t.Fatalf("round trip %s: %+v, %v", b, j, err)
	}
}

func TestDecodeBackupJobRejects(t *testing.T) {
	for name, msg := range map[string]string{
		"empty":          ``,
		"null":           `null`,
		"array":          `[]`,
		"not json":       `tenant=acme`,
		"trailing":       valid + `{}`,
		"trailing text":  valid + ` x`,
		"unknown field":  strings.Replace(valid, `{`, `{"extra":"1",`, 1),
		"case folded":    strings.Replace(valid, `"tenant"`, `"Tenant"`, 1),
		"missing reason": strings.Replace(valid, `"reason":"schedule",`, ``, 1),
		"bad reason":     strings.Replace(valid, `schedule`, `cron`, 1),
		"bad tenant":     strings.Replace(valid, `"acme"`, `"Acme"`, 1),
		"path tenant":    strings.Replace(valid, `"acme"`, `"../acme"`, 1),
		"bad id":         strings.Replace(valid, bid, "../x", 1),
		"bad time":       strings.Replace(valid, `2026-01-02T03:04:05Z`, `yesterday`, 1),
		"number tenant":  strings.Replace(valid, `"acme"`, `7`, 1),
		"huge":           `{"tenant":"` + strings.Repeat("a", 70000) + `"}`,
	} {
		if _, err := jobqueue.DecodeBackupJob([]byte(msg)); !errors.Is(err, jobqueue.ErrInvalidMessage) {
			t.Errorf("%s: got %v, want ErrInvalidMessage", name, err)
		}
	}
}

func TestDecodeRestoreJob(t *testing.T) {
	rid := catalog.NewID(at)
	msg := `{"tenant":"acme","restoreId":"` + rid + `"}`
	j, err := jobqueue.DecodeRestoreJob([]byte(msg))
	if err != nil || j != (jobqueue.RestoreJob{Tenant: "acme", RestoreID: rid}) {
		t.Fatalf("got %+v, %v", j, err)
	}
	for _, bad := range []string{
		`{"tenant":"acme"}`, `{"tenant":"acme","restoreId":"` + rid + `","mode":"x"}`,
		`{"tenant":"a_b","restoreId":"` + rid + `"}`, `{"tenant":"acme","restoreId":"` + rid + `"}x`,
		`{"tenant":"acme","restoreId":null}`,
	} {
		if _, err := jobqueue.DecodeRestoreJob([]byte(bad)); !errors.Is(err, jobqueue.ErrInvalidMessage) {
			t.Errorf("%s: got %v, want ErrInvalidMessage", bad, err)
		}
	}
}

func FuzzDecodeBackupJob(f *testing.F) {
	f.Add([]byte(valid))
	f.Add([]byte(strings.Replace(valid, "schedule", "manual", 1)))
	f.Add([]byte(`{"tenant":"acme"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := jobqueue.DecodeBackupJob(data)
		if err != nil {
			if !errors.Is(err, jobqueue.ErrInvalidMessage) {
				t.Fatalf("error %v is not ErrInvalidMessage", err)
			}
			return
		}
		if err := j.Validate(); err != nil {
			t.Fatalf("decoded job fails validation: %v", err)
		}
		b, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		again, err := jobqueue.DecodeBackupJob(b)
		if err != nil || again.Tenant != j.Tenant || again.BackupID != j.BackupID ||
			again.Reason != j.Reason || !again.RequestedAt.Equal(j.RequestedAt) {
			t.Fatalf("re-encoded %s decodes to %+v, %v; want %+v", b, again, err, j)
		}
	})
}

func FuzzDecodeRestoreJob(f *testing.F) {
	f.Add([]byte(`{"tenant":"acme","restoreId":"` + bid + `"}`))
	f.Add([]byte(`{"tenant":"acme","restoreId":"` + bid + `","x":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := jobqueue.DecodeRestoreJob(data)
		if err != nil {
			if !errors.Is(err, jobqueue.ErrInvalidMessage) {
				t.Fatalf("error %v is not ErrInvalidMessage", err)
			}
			return
		}
		b, _ := json.Marshal(j)
		if again, err := jobqueue.DecodeRestoreJob(b); err != nil || again != j {
			t.Fatalf("re-encoded %s decodes to %+v, %v; want %+v", b, again, err, j)
		}
	})
}
