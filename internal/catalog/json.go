package catalog

import (
	"encoding/json"
	"time"

	"github.com/twinit/byok-backup/internal/errcode"
)

// jsonTime is API.md's time format: RFC 3339, UTC, milliseconds.
const jsonTime = "2006-01-02T15:04:05.000Z"

// optTime is a time that marshals as null when zero.
type optTime time.Time

func (t optTime) MarshalJSON() ([]byte, error) {
	if time.Time(t).IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(time.Time(t).UTC().Format(jsonTime))
}

// optString is a string that marshals as null when empty.
type optString string

func (s optString) MarshalJSON() ([]byte, error) {
	if s == "" {
		return []byte("null"), nil
	}
	return json.Marshal(string(s))
}

// backupJSON is API.md's backup object. Every field is always present
// (unknown values are null) except fallbackReason, which the contract shows
// only when the platform key replaced an enabled customer key.
type backupJSON struct {
	BackupID       string          `json:"backupId"`
	Tenant         string          `json:"tenant"`
	Status         Status          `json:"status"`
	Reason         Reason          `json:"reason"`
	RequestedAt    optTime         `json:"requestedAt"`
	StartedAt      optTime         `json:"startedAt"`
	CompletedAt    optTime         `json:"completedAt"`
	KeySource      optString       `json:"keySource"`
	KeyID          optString       `json:"keyId"`
	FallbackReason *errcode.Detail `json:"fallbackReason,omitempty"`
	Records        int64           `json:"records"`
	Files          int64           `json:"files"`
	Bytes          int64           `json:"bytes"`
	StoredBytes    int64           `json:"storedBytes"`
	Chunks         int64           `json:"chunks"`
	Error          *errcode.Detail `json:"error"`
	// Progress is additive (issue 14 point 6): see backupProgressJSON.
	Progress backupProgressJSON `json:"progress"`
	// LastError is additive: present only while a queued backup waits for a
	// delayed retry (a transient customer key failure, API.md §5).
	LastError *errcode.Detail `json:"lastError,omitempty"`
	// Soft delete (API.md §6), present only on deleted and purged backups.
	DeletedAt  optTime `json:"deletedAt,omitzero"`
	PurgeAfter optTime `json:"purgeAfter,omitzero"`
	DeletedBy  string  `json:"deletedBy,omitempty"`
	PurgedAt   optTime `json:"purgedAt,omitzero"`
	// Additive (API.md §7): present once a re-wrap changed the key.
	RewrappedAt    *optTime `json:"rewrappedAt,omitempty"`
	PreviousKeyIDs []string `json:"previousKeyIds,omitempty"`
}

// MarshalJSON writes API.md's backup object; internal fields are left out.
func (b Backup) MarshalJSON() ([]byte, error) {
	j := backupJSON{
		BackupID: b.BackupID, Tenant: b.Tenant, Status: b.Status, Reason: b.Reason,
		RequestedAt: optTime(b.RequestedAt), StartedAt: optTime(b.StartedAt), CompletedAt: optTime(b.CompletedAt),
		KeySource: optString(b.KeySource), KeyID: optString(b.KeyID), FallbackReason: b.FallbackReason,
		Records: b.Records, Files: b.Files, Bytes: b.Bytes, StoredBytes: b.StoredBytes, Chunks: b.Chunks,
		Error: b.Error, LastError: b.LastError, Progress: b.progressJSON(),
		DeletedAt: optTime(b.DeletedAt), PurgeAfter: optTime(b.PurgeAfter), DeletedBy: b.DeletedBy, PurgedAt: optTime(b.PurgedAt),
	}
	if !b.RewrappedAt.IsZero() {
		t := optTime(b.RewrappedAt)
		j.RewrappedAt, j.PreviousKeyIDs = &t, b.PreviousKeyIDs
	}
	return json.Marshal(j)
}

// backupProgressJSON is a backup's progress: records, files and bytes read
// so far, and totalBytes, the files' total, null until known. A completed
// backup shows its final counts (totalBytes = bytes); a failed one what
// its last attempt had reached; a queued one zeros.
type backupProgressJSON struct {
	Records    int64  `json:"records"`
	Files      int64  `json:"files"`
	Bytes      int64  `json:"bytes"`
	TotalBytes *int64 `json:"totalBytes"`
}

func (b Backup) progressJSON() backupProgressJSON {
	if b.Status == StatusCompleted {
		total := b.Bytes
		return backupProgressJSON{Records: b.Records, Files: b.Files, Bytes: b.Bytes, TotalBytes: &total}
	}
	p := backupProgressJSON{Records: b.Progress.Records, Files: b.Progress.Files, Bytes: b.Progress.Bytes}
	if b.Progress.TotalKnown {
		total := b.Progress.TotalBytes
		p.TotalBytes = &total
	}
	return p
}

// restoreJSON is API.md's restore object.
type restoreJSON struct {
	RestoreID    string          `json:"restoreId"`
	BackupID     string          `json:"backupId"`
	Tenant       string          `json:"tenant"`
	TargetTenant string          `json:"targetTenant"`
	Mode         optString       `json:"mode"`
	DryRun       bool            `json:"dryRun"`
	State        RestoreState    `json:"state"`
	StartedAt    optTime         `json:"startedAt"`
	CompletedAt  optTime         `json:"completedAt"`
	Progress     Progress        `json:"progress"`
	Error        *errcode.Detail `json:"error"`
}

// MarshalJSON writes API.md's restore object; internal fields are left out.
func (r Restore) MarshalJSON() ([]byte, error) {
	return json.Marshal(restoreJSON{
		RestoreID: r.RestoreID, BackupID: r.BackupID, Tenant: r.Tenant, TargetTenant: r.TargetTenant,
		Mode: optString(r.Mode), DryRun: r.DryRun, State: r.State,
		StartedAt: optTime(r.StartedAt), CompletedAt: optTime(r.CompletedAt),
		Progress: r.Progress, Error: r.Error,
	})
}

// MarshalJSON writes API.md's list body: {"backups": [...],
// "continuationToken": null|"..."}; an empty page is an empty array.
func (p BackupPage) MarshalJSON() ([]byte, error) {
	backups := p.Backups
	if backups == nil {
		backups = []*Backup{}
	}
	return json.Marshal(struct {
		Backups           []*Backup `json:"backups"`
		ContinuationToken optString `json:"continuationToken"`
	}{backups, optString(p.ContinuationToken)})
}

// MarshalJSON writes API.md's list body: {"restores": [...],
// "continuationToken": null|"..."}; an empty page is an empty array.
func (p RestorePage) MarshalJSON() ([]byte, error) {
	restores := p.Restores
	if restores == nil {
		restores = []*Restore{}
	}
	return json.Marshal(struct {
		Restores          []*Restore `json:"restores"`
		ContinuationToken optString  `json:"continuationToken"`
	}{restores, optString(p.ContinuationToken)})
}
