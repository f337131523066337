package catalog

import (
	"time"

	"github.com/twinit/byok-backup/internal/errcode"
)

// RestoreState is a restore's lifecycle state (API.md §2 "Restores").
type RestoreState string

const (
	RestoreQueued    RestoreState = "queued"
	RestoreRunning   RestoreState = "running"
	RestoreSucceeded RestoreState = "succeeded"
	RestoreFailed    RestoreState = "failed"
)

// Mode is how a restore writes the target tenant.
type Mode string

const (
	ModeReplace Mode = "replace"
	ModeMerge   Mode = "merge"
)

// Valid reports whether m is one of API.md's modes.
func (m Mode) Valid() bool { return m == ModeReplace || m == ModeMerge }

// Progress counts what a restore has written (or, for a dry run, verified).
type Progress struct {
	Records int64 `json:"records"`
	Files   int64 `json:"files"`
	Bytes   int64 `json:"bytes"`
}

// Restore is one row of the Restores table (PartitionKey = Tenant, the
// SOURCE tenant; RowKey = RestoreID). Its JSON form is exactly the
// contract's restore object; internal fields are stored, never marshalled.
type Restore struct {
	RestoreID    string
	BackupID     string
	Tenant       string // source tenant, owner of the backup
	TargetTenant string
	Mode         Mode // empty only for a dry run that named no mode
	DryRun       bool
	State        RestoreState
	Progress     Progress
	// Job holds RequestedAt, StartedAt, CompletedAt, Error, Attempt,
	// Attempts, HeartbeatAt and ETag.
	Job
}

// NewRestore returns a queued restore with a new id. targetTenant empty
// means the source tenant.
func NewRestore(tenant, backupID, targetTenant string, mode Mode, dryRun bool, now time.Time) *Restore {
	if targetTenant == "" {
		targetTenant = tenant
	}
	return &Restore{
		RestoreID: NewID(now), BackupID: backupID, Tenant: tenant, TargetTenant: targetTenant,
		Mode: mode, DryRun: dryRun, State: RestoreQueued, Job: Job{RequestedAt: now},
	}
}

var restoreTransitions = map[RestoreState]map[RestoreState]bool{
	RestoreQueued:  {RestoreRunning: false, RestoreFailed: false},
	RestoreRunning: {RestoreSucceeded: false, RestoreFailed: false, RestoreRunning: true},
	RestoreFailed:  {RestoreRunning: true},
}

// CheckRestoreTransition returns nil if a restore may go from one state to
// another, a *TransitionError otherwise. retry must be true for failed →
// running and running → running; succeeded is final.
func CheckRestoreTransition(from, to RestoreState, retry bool) error {
	needsRetry, ok := restoreTransitions[from][to]
	if !ok || needsRetry && !retry {
		return &TransitionError{Kind: "restore", From: string(from), To: string(to)}
	}
	return nil
}

// Start moves the restore to running for attempt. A retry restarts progress
// from zero, since the worker verifies the whole backup again.
func (r *Restore) Start(attempt string, now time.Time, retry bool) error {
	if err := CheckRestoreTransition(r.State, RestoreRunning, retry); err != nil {
		return err
	}
	r.Job.start(attempt, now, retry)
	r.State = RestoreRunning
	r.Progress = Progress{}
	return nil
}

// SetProgress records progress of the running attempt and counts as a heartbeat.
func (r *Restore) SetProgress(p Progress, now time.Time) error {
	if r.State != RestoreRunning {
		return &TransitionError{Kind: "restore", From: string(r.State), To: string(RestoreRunning)}
	}
	r.Progress = p
	r.HeartbeatAt = now
	return nil
}

// Succeed marks the restore done.
func (r *Restore) Succeed(now time.Time) error {
	if err := CheckRestoreTransition(r.State, RestoreSucceeded, false); err != nil {
		return err
	}
	r.State = RestoreSucceeded
	r.end(now, nil)
	return nil
}

// Fail marks the restore failed with a contract error.
func (r *Restore) Fail(now time.Time, cause errcode.Detail) error {
	if err := CheckRestoreTransition(r.State, RestoreFailed, false); err != nil {
		return err
	}
	r.State = RestoreFailed
	r.end(now, &cause)
	return nil
}

// Heartbeat records that the running attempt is alive.
func (r *Restore) Heartbeat(now time.Time) error {
	if r.State != RestoreRunning {
		return &TransitionError{Kind: "restore", From: string(r.State), To: string(RestoreRunning)}
	}
	r.HeartbeatAt = now
	return nil
}

// Normalize puts times in UTC with millisecond precision.
func (r *Restore) Normalize() { r.Job.normalize() }

// Clone returns a deep copy.
func (r *Restore) Clone() *Restore {
	c := *r
	r.Job.cloneInto(&c.Job)
	return &c
}

// JobPart is the row's shared part ([Row]).
func (r *Restore) JobPart() *Job { return &r.Job }

// Key is the row's (source) tenant and restore id.
func (r *Restore) Key() (tenant, id string) { return r.Tenant, r.RestoreID }

// Phase maps the restore's state onto the lifecycle.
func (r *Restore) Phase() Phase {
	switch r.State {
	case RestoreRunning:
		return PhaseRunning
	case RestoreSucceeded, RestoreFailed:
		return PhaseEnded
	}
	return PhaseQueued
}
