package catalog

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"slices"
	"time"

	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// Status is a backup's lifecycle state (API.md §2 "Backups").
type Status string

const (
	StatusQueued    Status = "queued"
	StatusRunning   Status = "running"
	StatusCompleted Status = "completed"
	StatusFailed    Status = "failed"
	// StatusDeleted is a soft-deleted backup (API.md §6): all blobs kept
	// until PurgeAfter, undeletable until its purge starts.
	StatusDeleted Status = "deleted"
	// StatusPurged is a deleted backup whose blobs are gone; the row stays
	// as history.
	StatusPurged Status = "purged"
)

// DeletedByRetention is DeletedBy of a backup the retention run deleted.
const DeletedByRetention = "retention"

// Reason says why a backup was requested.
type Reason string

const (
	ReasonSchedule Reason = "schedule"
	ReasonManual   Reason = "manual"
)

// Valid reports whether r is one of API.md's reasons.
func (r Reason) Valid() bool { return r == ReasonSchedule || r == ReasonManual }

// Backup is one row of the Backups table (PartitionKey = Tenant, RowKey =
// BackupID). Its JSON form is exactly API.md's backup object; the
// internal fields after Error are stored but never marshalled.
//
// A Backup is only listed as restorable when Status is completed: the row is
// the commit point written after every chunk and the manifest (docs/ARCHITECTURE.md
// "Backup format").
type Backup struct {
	BackupID string
	Tenant   string
	Status   Status
	Reason   Reason
	// Job holds RequestedAt, StartedAt, CompletedAt (set when completed or
	// failed), Error, Attempt, Attempts, HeartbeatAt and ETag.
	Job

	KeySource keywrap.Source // empty until the data key is wrapped
	KeyID     string         // versioned id of the key that wrapped the data key
	// FallbackReason is set only when BYOK was enabled and the platform key
	// was used instead.
	FallbackReason *errcode.Detail

	Records, Files, Bytes, StoredBytes, Chunks int64

	// Progress is what the running attempt has read so far, written with
	// its heartbeat (issue 14 point 6); a failed backup keeps the last
	// one. The JSON of a completed backup shows its final counts instead.
	Progress BackupProgress

	// ManifestBlob is the blob name of the committed manifest.
	ManifestBlob string
	// ManifestDigest pins the committed manifest's bytes ([DigestManifest]),
	// so a restore refuses any other manifest of the same backup id (another
	// attempt's, valid but not the one committed). Empty on rows written
	// before it was recorded.
	ManifestDigest string
	// Streams maps each chunk stream name to its number of chunks.
	Streams map[string]int64
	// EntraTenantID is the customer's Entra tenant (a GUID, not secret)
	// whose grant let the service wrap with the customer key; set only when
	// KeySource is customer. A restore signs in to that tenant, so the
	// backup stays restorable after BYOK is turned off (which clears the
	// tenant's settings).
	EntraTenantID string

	// FirstAttemptAt is the first start of any attempt, kept across
	// retries and takeovers (StartedAt is not): a transient key failure is
	// waited out until BYOK_TRANSIENT_GRACE after it (API.md §5).
	FirstAttemptAt time.Time
	// LastError says why a queued backup is waiting for a delayed retry
	// (contract: additive field `lastError`); cleared when it finishes.
	LastError *errcode.Detail
	// RetryAt is when the delayed retry message of a requeued backup
	// becomes visible; a delivery well before it is a duplicate.
	RetryAt time.Time

	// Soft delete (API.md §6): set by SoftDelete, cleared by Undelete.
	DeletedAt, PurgeAfter time.Time
	DeletedBy             string // "retention" or the caller's subject
	// PurgeStartedAt is written before a purge deletes its first blob: from
	// then on the backup may lack blobs, so it can't be undeleted and the
	// next retention run finishes the purge whatever PurgeAfter says.
	PurgeStartedAt time.Time
	// PurgedAt is when the row became purged.
	PurgedAt time.Time
	// RewrappedAt is when a re-wrap (API.md §7) last changed the key
	// that wraps the data key; PreviousKeyIDs are the keys that wrapped it
	// before, oldest first. Rewraps counts re-wraps: the re-wrapped
	// manifest's blob name (blobstore.Layout.RewrapManifest).
	RewrappedAt    time.Time
	PreviousKeyIDs []string
	Rewraps        int
}

// BackupProgress counts what a backup attempt has read and encrypted so
// far. TotalBytes (the files' bytes) is known once the files listing has
// ended; the records' total is never known ahead (Table Storage has no
// count).
type BackupProgress struct {
	Records, Files, Bytes int64
	TotalBytes            int64
	TotalKnown            bool
}

// NewBackup returns a queued backup with a new id.
func NewBackup(tenant string, reason Reason, now time.Time) *Backup {
	return &Backup{
		BackupID: NewID(now),
		Tenant:   tenant,
		Status:   StatusQueued,
		Reason:   reason,
		Job:      Job{RequestedAt: now},
	}
}

// DigestManifest is the value of [Backup.ManifestDigest] for manifest
// bytes: "sha256:" and the lowercase hex SHA-256.
func DigestManifest(manifest []byte) string {
	sum := sha256.Sum256(manifest)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// MatchesManifest reports whether manifest is the one the row pins; a row
// without a digest (written before it was recorded) pins none and matches
// every manifest.
func (b *Backup) MatchesManifest(manifest []byte) bool {
	if b.ManifestDigest == "" {
		return true
	}
	return subtle.ConstantTimeCompare([]byte(DigestManifest(manifest)), []byte(b.ManifestDigest)) == 1
}

// Restorable reports whether the backup is committed.
func (b *Backup) Restorable() bool { return b.Status == StatusCompleted }

// backupTransitions is the state machine. A failed backup may run again only
// as an explicit retry, and a running one may be taken over only by an
// explicit retry (the previous attempt's heartbeat went stale); completed
// only goes to deleted (and back, until the purge starts), purged is final.
var backupTransitions = map[Status]map[Status]bool{
	StatusQueued:  {StatusRunning: false, StatusFailed: false},
	StatusRunning: {StatusCompleted: false, StatusFailed: false, StatusRunning: true, StatusQueued: false},
	StatusFailed:  {StatusRunning: true},
	// Soft delete and undelete; deleted → purged once the blobs are gone.
	StatusCompleted: {StatusDeleted: false},
	StatusDeleted:   {StatusCompleted: false, StatusPurged: false},
}

// CheckBackupTransition returns nil if a backup may go from one status to
// another, a *TransitionError otherwise. retry must be true for failed →
// running and running → running (taking over a stale attempt).
func CheckBackupTransition(from, to Status, retry bool) error {
	needsRetry, ok := backupTransitions[from][to]
	if !ok || needsRetry && !retry {
		return &TransitionError{Kind: "backup", From: string(from), To: string(to)}
	}
	return nil
}

// Start moves the backup to running for attempt. retry allows restarting a
// failed backup or taking over a running one; a retry clears the previous
// error and results.
func (b *Backup) Start(attempt string, now time.Time, retry bool) error {
	if err := CheckBackupTransition(b.Status, StatusRunning, retry); err != nil {
		return err
	}
	b.Job.start(attempt, now, retry)
	// A new attempt reads everything again.
	b.Progress = BackupProgress{}
	if b.FirstAttemptAt.IsZero() {
		b.FirstAttemptAt = now
	}
	b.Status = StatusRunning
	return nil
}

// Requeue puts a running backup back to queued to wait for a delayed retry
// at retryAt, saying why in LastError; the attempt gives up the row.
func (b *Backup) Requeue(retryAt time.Time, why errcode.Detail) error {
	if err := CheckBackupTransition(b.Status, StatusQueued, false); err != nil {
		return err
	}
	b.Status = StatusQueued
	b.Attempt = ""
	b.HeartbeatAt = time.Time{}
	b.RetryAt = retryAt
	b.LastError = &why
	return nil
}

// Heartbeat records that the running attempt is alive.
func (b *Backup) Heartbeat(now time.Time) error {
	if b.Status != StatusRunning {
		return &TransitionError{Kind: "backup", From: string(b.Status), To: string(StatusRunning)}
	}
	b.HeartbeatAt = now
	return nil
}

// SetProgress records the running attempt's progress; it counts as a
// heartbeat (the same write).
func (b *Backup) SetProgress(p BackupProgress, now time.Time) error {
	if err := b.Heartbeat(now); err != nil {
		return err
	}
	b.Progress = p
	return nil
}

// Complete marks the backup committed. Set the key, counts and manifest
// fields first: the row written by this update is the commit point.
func (b *Backup) Complete(now time.Time) error {
	if err := CheckBackupTransition(b.Status, StatusCompleted, false); err != nil {
		return err
	}
	b.Status = StatusCompleted
	b.end(now, nil)
	b.LastError, b.RetryAt = nil, time.Time{}
	return nil
}

// Fail marks the backup failed with a contract error.
func (b *Backup) Fail(now time.Time, cause errcode.Detail) error {
	if err := CheckBackupTransition(b.Status, StatusFailed, false); err != nil {
		return err
	}
	b.Status = StatusFailed
	b.end(now, &cause)
	b.LastError, b.RetryAt = nil, time.Time{}
	return nil
}

// WaitingSince is [Job.WaitingSince], or for a backup waiting out a
// transient key failure its RetryAt (its delayed message is due then, not
// before), whichever is later.
func (b *Backup) WaitingSince() time.Time {
	if w := b.Job.WaitingSince(); !b.RetryAt.After(w) {
		return w
	}
	return b.RetryAt
}

// Normalize puts times in UTC with millisecond precision, the precision that
// survives storage, so a row read back equals the row written.
func (b *Backup) Normalize() {
	b.Job.normalize()
	for _, t := range []*time.Time{&b.FirstAttemptAt, &b.RetryAt, &b.DeletedAt, &b.PurgeAfter, &b.PurgeStartedAt, &b.PurgedAt, &b.RewrappedAt} {
		*t = normTime(*t)
	}
}

func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Millisecond)
}

// Clone returns a deep copy.
func (b *Backup) Clone() *Backup {
	c := *b
	b.Job.cloneInto(&c.Job)
	if b.FallbackReason != nil {
		d := *b.FallbackReason
		c.FallbackReason = &d
	}
	if b.LastError != nil {
		d := *b.LastError
		c.LastError = &d
	}
	c.PreviousKeyIDs = slices.Clone(b.PreviousKeyIDs)
	if b.Streams != nil {
		c.Streams = make(map[string]int64, len(b.Streams))
		for k, v := range b.Streams {
			c.Streams[k] = v
		}
	}
	return &c
}

// JobPart is the row's shared part ([Row]).
func (b *Backup) JobPart() *Job { return &b.Job }

// Key is the row's tenant and backup id.
func (b *Backup) Key() (tenant, id string) { return b.Tenant, b.BackupID }

// Phase maps the backup's status onto the lifecycle.
func (b *Backup) Phase() Phase {
	switch b.Status {
	case StatusRunning:
		return PhaseRunning
	case StatusCompleted, StatusFailed, StatusDeleted, StatusPurged:
		return PhaseEnded
	}
	return PhaseQueued
}

// SoftDelete moves a completed backup to deleted by who; its blobs stay
// until purgeAfter (API.md §6).
func (b *Backup) SoftDelete(now, purgeAfter time.Time, who string) error {
	if err := CheckBackupTransition(b.Status, StatusDeleted, false); err != nil {
		return err
	}
	b.Status = StatusDeleted
	b.DeletedAt, b.PurgeAfter, b.DeletedBy = now, purgeAfter, who
	b.PurgeStartedAt = time.Time{}
	return nil
}

// Undeletable reports whether a deleted backup still has all its blobs and
// may go back to completed: before purgeAfter and before its purge started.
func (b *Backup) Undeletable(now time.Time) bool {
	return b.Status == StatusDeleted && b.PurgeStartedAt.IsZero() && now.Before(b.PurgeAfter)
}

// Undelete moves a deleted backup back to completed; see [Backup.Undeletable].
func (b *Backup) Undelete(now time.Time) error {
	if err := CheckBackupTransition(b.Status, StatusCompleted, false); err != nil {
		return err
	}
	if !b.Undeletable(now) {
		return &TransitionError{Kind: "backup", From: "deleted past its purge time", To: string(StatusCompleted)}
	}
	b.Status = StatusCompleted
	b.DeletedAt, b.PurgeAfter, b.DeletedBy = time.Time{}, time.Time{}, ""
	return nil
}

// Purgeable reports whether a deleted backup's blobs may be deleted now:
// past purgeAfter, or its purge already started.
func (b *Backup) Purgeable(now time.Time) bool {
	return b.Status == StatusDeleted && (!b.PurgeStartedAt.IsZero() || !now.Before(b.PurgeAfter))
}

// StartPurge records that the purge begins; write it before deleting any blob.
func (b *Backup) StartPurge(now time.Time) error {
	if !b.Purgeable(now) {
		return &TransitionError{Kind: "backup", From: string(b.Status) + " before its purge time", To: "purging"}
	}
	if b.PurgeStartedAt.IsZero() {
		b.PurgeStartedAt = now
	}
	return nil
}

// Purge marks a backup whose purge started, and whose blobs are all
// deleted, purged.
func (b *Backup) Purge(now time.Time) error {
	if err := CheckBackupTransition(b.Status, StatusPurged, false); err != nil {
		return err
	}
	if b.PurgeStartedAt.IsZero() {
		return &TransitionError{Kind: "backup", From: "deleted without a started purge", To: string(StatusPurged)}
	}
	b.Status = StatusPurged
	b.PurgedAt = now
	return nil
}
