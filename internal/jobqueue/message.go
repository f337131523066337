package jobqueue

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/tenants"
)

// Default queue names (API.md §1); QUEUE_BACKUP_JOBS and
// QUEUE_RESTORE_JOBS override them (backup.Options.QueueName,
// restore.Options.QueueName).
const (
	BackupQueue  = "backup-jobs"
	RestoreQueue = "restore-jobs"
)

// MaxMessageSize is Azure Queue Storage's limit on a message: 64 KiB.
const MaxMessageSize = 64 << 10

// ErrInvalidMessage: a queue message that is not exactly the contract's
// shape. A worker that gets one must not retry it: redelivery cannot fix it.
var ErrInvalidMessage = errors.New("jobqueue: invalid message")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidMessage, fmt.Sprintf(format, args...))
}

// BackupJob is a `backup-jobs` message:
// {"tenant", "backupId", "reason", "requestedAt"}.
type BackupJob struct {
	Tenant      string
	BackupID    string
	Reason      catalog.Reason
	RequestedAt time.Time
}

// RestoreJob is a `restore-jobs` message: {"tenant", "restoreId"}; the
// request itself is the Restores row.
type RestoreJob struct {
	Tenant    string
	RestoreID string
}

// Validate checks every field as the decoder does.
func (j BackupJob) Validate() error {
	switch {
	case !tenants.ValidID(j.Tenant):
		return invalid("tenant is not a valid tenant id")
	case !catalog.ValidID(j.BackupID):
		return invalid("backupId is not a valid id")
	case !j.Reason.Valid():
		return invalid("reason must be schedule or manual")
	case j.RequestedAt.IsZero():
		return invalid("requestedAt is missing")
	}
	return nil
}

// Validate checks every field as the decoder does.
func (j RestoreJob) Validate() error {
	switch {
	case !tenants.ValidID(j.Tenant):
		return invalid("tenant is not a valid tenant id")
	case !catalog.ValidID(j.RestoreID):
		return invalid("restoreId is not a valid id")
	}
	return nil
}

// MarshalJSON writes API.md's shape, requestedAt in RFC 3339 UTC.
func (j BackupJob) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"tenant": j.Tenant, "backupId": j.BackupID, "reason": string(j.Reason),
		"requestedAt": j.RequestedAt.UTC().Format(time.RFC3339Nano),
	})
}

// MarshalJSON writes API.md's shape.
func (j RestoreJob) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"tenant": j.Tenant, "restoreId": j.RestoreID})
}

// fields decodes one JSON object whose keys are exactly want, every value a
// string. encoding/json alone would match keys case-insensitively and
// ignore unknown ones; a job message is machine-made, so anything but the
// exact shape is refused.
func fields(data []byte, want ...string) (map[string]string, error) {
	if len(data) > MaxMessageSize {
		return nil, invalid("message is larger than %d bytes", MaxMessageSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return nil, invalid("message is not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalid("message has data after the JSON object")
	}
	out := make(map[string]string, len(want))
	for _, k := range want {
		v, ok := raw[k]
		if !ok {
			return nil, invalid("field %s is missing", k)
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, invalid("field %s is not a string", k)
		}
		out[k] = s
	}
	if len(raw) != len(want) {
		return nil, invalid("message has unknown fields")
	}
	return out, nil
}

// DecodeBackupJob strictly decodes the text of a `backup-jobs` message (as
// the Functions host delivers it, already base64-decoded).
func DecodeBackupJob(data []byte) (BackupJob, error) {
	f, err := fields(data, "tenant", "backupId", "reason", "requestedAt")
	if err != nil {
		return BackupJob{}, err
	}
	at, err := time.Parse(time.RFC3339Nano, f["requestedAt"])
	if err != nil {
		return BackupJob{}, invalid("requestedAt is not an RFC 3339 time")
	}
	j := BackupJob{Tenant: f["tenant"], BackupID: f["backupId"], Reason: catalog.Reason(f["reason"]), RequestedAt: at.UTC()}
	if err := j.Validate(); err != nil {
		return BackupJob{}, err
	}
	return j, nil
}

// DecodeRestoreJob strictly decodes the text of a `restore-jobs` message.
func DecodeRestoreJob(data []byte) (RestoreJob, error) {
	f, err := fields(data, "tenant", "restoreId")
	if err != nil {
		return RestoreJob{}, err
	}
	j := RestoreJob{Tenant: f["tenant"], RestoreID: f["restoreId"]}
	if err := j.Validate(); err != nil {
		return RestoreJob{}, err
	}
	return j, nil
}
