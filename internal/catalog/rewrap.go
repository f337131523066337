package catalog

import (
	"context"
	"encoding/json"
	"time"

	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// RewrapState is a re-wrap job's lifecycle state (API.md §7).
type RewrapState string

const (
	RewrapQueued    RewrapState = "queued"
	RewrapRunning   RewrapState = "running"
	RewrapSucceeded RewrapState = "succeeded"
	RewrapFailed    RewrapState = "failed"
)

// MaxRewrapFailures bounds the failures a re-wrap row lists: a Table
// Storage property holds 64 KiB, and a tenant whose old key is gone could
// fail thousands of backups. Progress.Failed still counts every one.
const MaxRewrapFailures = 50

// RewrapProgress counts the backups a re-wrap looked at.
type RewrapProgress struct {
	Total   int64 `json:"total"`
	Done    int64 `json:"done"`
	Skipped int64 `json:"skipped"`
	Failed  int64 `json:"failed"`
}

// RewrapFailure is one backup a re-wrap could not re-wrap; it keeps its
// old wrapping.
type RewrapFailure struct {
	BackupID string       `json:"backupId"`
	Code     errcode.Code `json:"code"`
	Message  string       `json:"message"`
}

// Rewrap is one row of the Rewraps table (PartitionKey = Tenant, RowKey =
// RewrapID). Its JSON form is API.md's re-wrap object.
type Rewrap struct {
	RewrapID               string
	Tenant                 string
	To                     keywrap.Source
	IncludePlatformBackups bool
	DryRun                 bool
	State                  RewrapState
	Progress               RewrapProgress
	Failures               []RewrapFailure
	Job
}

// NewRewrap returns a queued re-wrap with a new id.
func NewRewrap(tenant string, to keywrap.Source, includePlatform, dryRun bool, now time.Time) *Rewrap {
	return &Rewrap{RewrapID: NewID(now), Tenant: tenant, To: to, IncludePlatformBackups: includePlatform,
		DryRun: dryRun, State: RewrapQueued, Job: Job{RequestedAt: now}}
}

var rewrapTransitions = map[RewrapState]map[RewrapState]bool{
	RewrapQueued:  {RewrapRunning: false, RewrapFailed: false},
	RewrapRunning: {RewrapSucceeded: false, RewrapFailed: false, RewrapRunning: true},
	RewrapFailed:  {RewrapRunning: true},
}

func checkRewrap(from, to RewrapState, retry bool) error {
	needsRetry, ok := rewrapTransitions[from][to]
	if !ok || needsRetry && !retry {
		return &TransitionError{Kind: "rewrap", From: string(from), To: string(to)}
	}
	return nil
}

// Start moves the re-wrap to running for attempt. The progress restarts:
// the attempt counts the tenant's backups again (those already re-wrapped
// count as skipped).
func (r *Rewrap) Start(attempt string, now time.Time, retry bool) error {
	if err := checkRewrap(r.State, RewrapRunning, retry); err != nil {
		return err
	}
	r.Job.start(attempt, now, retry)
	r.State = RewrapRunning
	r.Progress, r.Failures = RewrapProgress{}, nil
	return nil
}

// Heartbeat records that the running attempt is alive.
func (r *Rewrap) Heartbeat(now time.Time) error {
	if r.State != RewrapRunning {
		return &TransitionError{Kind: "rewrap", From: string(r.State), To: string(RewrapRunning)}
	}
	r.HeartbeatAt = now
	return nil
}

// Succeed ends the re-wrap; failures of single backups are in Failures,
// not a failed job.
func (r *Rewrap) Succeed(now time.Time) error {
	if err := checkRewrap(r.State, RewrapSucceeded, false); err != nil {
		return err
	}
	r.State = RewrapSucceeded
	r.end(now, nil)
	return nil
}

// Fail ends the re-wrap with a contract error.
func (r *Rewrap) Fail(now time.Time, cause errcode.Detail) error {
	if err := checkRewrap(r.State, RewrapFailed, false); err != nil {
		return err
	}
	r.State = RewrapFailed
	r.end(now, &cause)
	return nil
}

// Normalize puts times in UTC with millisecond precision.
func (r *Rewrap) Normalize() { r.Job.normalize() }

// Clone returns a deep copy.
func (r *Rewrap) Clone() *Rewrap {
	c := *r
	r.Job.cloneInto(&c.Job)
	c.Failures = append([]RewrapFailure(nil), r.Failures...)
	return &c
}

func (r *Rewrap) JobPart() *Job            { return &r.Job }
func (r *Rewrap) Key() (tenant, id string) { return r.Tenant, r.RewrapID }
func (r *Rewrap) Phase() Phase {
	switch r.State {
	case RewrapRunning:
		return PhaseRunning
	case RewrapSucceeded, RewrapFailed:
		return PhaseEnded
	}
	return PhaseQueued
}

// Active reports whether the re-wrap is queued or running.
func (r *Rewrap) Active() bool { return r.State == RewrapQueued || r.State == RewrapRunning }

type rewrapJSON struct {
	RewrapID               string          `json:"rewrapId"`
	Tenant                 string          `json:"tenant"`
	To                     keywrap.Source  `json:"to"`
	IncludePlatformBackups bool            `json:"includePlatformBackups"`
	DryRun                 bool            `json:"dryRun"`
	State                  RewrapState     `json:"state"`
	RequestedAt            optTime         `json:"requestedAt"`
	StartedAt              optTime         `json:"startedAt"`
	CompletedAt            optTime         `json:"completedAt"`
	Progress               RewrapProgress  `json:"progress"`
	Failures               []RewrapFailure `json:"failures"`
	Error                  *errcode.Detail `json:"error"`
}

// MarshalJSON writes API.md's re-wrap object.
func (r Rewrap) MarshalJSON() ([]byte, error) {
	f := r.Failures
	if f == nil {
		f = []RewrapFailure{}
	}
	return json.Marshal(rewrapJSON{RewrapID: r.RewrapID, Tenant: r.Tenant, To: r.To, IncludePlatformBackups: r.IncludePlatformBackups,
		DryRun: r.DryRun, State: r.State, RequestedAt: optTime(r.RequestedAt), StartedAt: optTime(r.StartedAt),
		CompletedAt: optTime(r.CompletedAt), Progress: r.Progress, Failures: f, Error: r.Error})
}

// RewrapPage is one page of ListRewraps.
type RewrapPage struct {
	Rewraps           []*Rewrap
	ContinuationToken string
}

// MarshalJSON writes {"rewraps": [...], "continuationToken": null|"..."}.
func (p RewrapPage) MarshalJSON() ([]byte, error) {
	rs := p.Rewraps
	if rs == nil {
		rs = []*Rewrap{}
	}
	return json.Marshal(struct {
		Rewraps           []*Rewrap `json:"rewraps"`
		ContinuationToken optString `json:"continuationToken"`
	}{rs, optString(p.ContinuationToken)})
}

// RewrapStore is the Rewraps table. Implementations: catalog/aztable
// (Rewraps) and catalog/mem (Rewraps); writes are conditional like Store's.
type RewrapStore interface {
	CreateRewrap(ctx context.Context, r *Rewrap) error
	GetRewrap(ctx context.Context, tenant, rewrapID string) (*Rewrap, error)
	UpdateRewrap(ctx context.Context, r *Rewrap) error
	// ListRewraps pages newest first, as ListBackups.
	ListRewraps(ctx context.Context, tenant string, opts ListOptions) (RewrapPage, error)
	// ActiveRewrap returns the tenant's newest queued or running re-wrap,
	// or ErrNotFound.
	ActiveRewrap(ctx context.Context, tenant string) (*Rewrap, error)
}

// BackupScanner visits a tenant's backups one storage page at a time, so
// a job over thousands of backups never holds them all (a re-wrap, the
// BYOK status counts). The order is oldest first.
type BackupScanner interface {
	ScanBackups(ctx context.Context, tenant string, o ScanOptions, fn func(*Backup) error) error
}

// ScanOptions select what ScanBackups visits.
type ScanOptions struct {
	// Statuses are the statuses visited; empty means all.
	Statuses []Status
	// KeysOnly reads only the id, status, key source and key id of each
	// row (a projection: counting needs nothing else).
	KeysOnly bool
}

// KeyCounts are a tenant's completed backups by what wraps their data key
// (API.md §7, GET …/byok "backups").
type KeyCounts struct {
	Customer, Platform, OlderCustomerKeys int64
}

// CountKeys counts tenant's completed backups by key; OlderCustomerKeys
// are the customer-key ones not wrapped by currentKeyID (the configured
// key's current version). It holds no row past its callback.
func CountKeys(ctx context.Context, s BackupScanner, tenant, currentKeyID string) (KeyCounts, error) {
	var c KeyCounts
	err := s.ScanBackups(ctx, tenant, ScanOptions{Statuses: []Status{StatusCompleted}, KeysOnly: true}, func(b *Backup) error {
		switch b.KeySource {
		case keywrap.Customer:
			c.Customer++
			if b.KeyID != currentKeyID {
				c.OlderCustomerKeys++
			}
		case keywrap.Platform:
			c.Platform++
		}
		return nil
	})
	return c, err
}

// RecordRewrap records that b's data key is now wrapped by keyID of src,
// in the manifest blob manifest with digest digest: the old key id joins
// PreviousKeyIDs, FallbackReason stays as history.
func (b *Backup) RecordRewrap(src keywrap.Source, keyID, entraTenant, manifest, digest string, now time.Time) {
	b.PreviousKeyIDs = append(b.PreviousKeyIDs, b.KeyID)
	b.KeySource, b.KeyID = src, keyID
	b.EntraTenantID = entraTenant
	b.ManifestBlob, b.ManifestDigest = manifest, digest
	b.RewrappedAt = now
	b.Rewraps++
}
