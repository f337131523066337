package catalog

import (
	"time"

	"github.com/twinit/byok-backup/internal/errcode"
)

// Job is the part of a catalog row every job kind shares (a backup, a
// restore, and the kinds to come): who runs it, since when, whether it is
// alive, how it ended, and the row version. Backup and Restore embed it, so
// the stores and the job lifecycle (internal/job) handle it once.
type Job struct {
	// RequestedAt is when the job was accepted.
	RequestedAt time.Time
	StartedAt   time.Time // zero until the first start
	CompletedAt time.Time // zero until the job ended
	// Error is API.md's {code, message} of a failed job.
	Error *errcode.Detail
	// Attempt identifies the worker invocation that owns the running job; a
	// new attempt gets a new value, so a late write of an older attempt is
	// recognisable.
	Attempt string
	// Attempts counts starts, retries and takeovers included.
	Attempts int
	// HeartbeatAt is when the running attempt last proved it is alive; the
	// crash sweep looks for running rows whose heartbeat is stale.
	HeartbeatAt time.Time
	// ResentAt is when the forgotten-job sweep last enqueued the queued
	// job's message again (its first one may never have been written: a
	// process killed between the row and the message); zero if never.
	ResentAt time.Time
	// ETag is the row version returned by the last read or write; an
	// update succeeds only if the stored row still has it.
	ETag string
}

// Phase is where a job is in its lifecycle, whatever its kind calls its
// states.
type Phase int

const (
	PhaseQueued Phase = iota
	PhaseRunning
	PhaseEnded
)

// Row is what the stores and the job lifecycle need of a row kind
// (*Backup, *Restore).
type Row[T any] interface {
	Clone() T
	// JobPart is the shared part of the row.
	JobPart() *Job
	// Key is the row's partition (tenant) and row key (id).
	Key() (tenant, id string)
	Phase() Phase
	// Start moves the row to running for attempt; retry allows taking over
	// a running row (and, where the kind allows it, restarting a failed one).
	Start(attempt string, now time.Time, retry bool) error
	// Heartbeat records that the running attempt is alive.
	Heartbeat(now time.Time) error
	Fail(now time.Time, cause errcode.Detail) error
	Normalize()
}

// start applies the shared part of a start.
func (j *Job) start(attempt string, now time.Time, retry bool) {
	if j.StartedAt.IsZero() || retry {
		j.StartedAt = now
	}
	j.Attempt = attempt
	j.Attempts++
	j.HeartbeatAt = now
	j.CompletedAt = time.Time{}
	j.Error = nil
}

// end applies the shared part of a success (cause nil) or a failure.
func (j *Job) end(now time.Time, cause *errcode.Detail) {
	j.CompletedAt = now
	j.Error = cause
}

// LastAlive is the running job's last sign of life: its heartbeat, or its
// start when the heartbeat was cleared for a retry that never came.
func (j *Job) LastAlive() time.Time {
	if j.HeartbeatAt.IsZero() {
		return j.StartedAt
	}
	return j.HeartbeatAt
}

// WaitingSince is when a queued job last had a message coming: its
// request, or the sweep's last resend. A queued row that has waited
// longer than the sweep grace has lost its message, or waits in a backlog
// (a duplicate message is harmless there: the row decides).
func (j *Job) WaitingSince() time.Time {
	if j.ResentAt.After(j.RequestedAt) {
		return j.ResentAt
	}
	return j.RequestedAt
}

// normalize puts the shared times in UTC with millisecond precision.
func (j *Job) normalize() {
	for _, t := range []*time.Time{&j.RequestedAt, &j.StartedAt, &j.CompletedAt, &j.HeartbeatAt, &j.ResentAt} {
		*t = normTime(*t)
	}
}

// clone deep-copies the shared part into c.
func (j *Job) cloneInto(c *Job) {
	*c = *j
	if j.Error != nil {
		d := *j.Error
		c.Error = &d
	}
}
