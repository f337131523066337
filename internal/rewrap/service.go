// Package rewrap changes which key wraps a tenant's backups' data keys
// (API.md §7) without touching their chunks: each backup's data key is
// unwrapped with the key its catalog row names, wrapped with the target
// key, and written into a re-wrapped manifest (FORMAT.md §10) that the row
// then names. A re-wrap is a job of internal/job: one `rewrap-jobs`
// message, one Rewraps row, the tenant's lease.
package rewrap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twinit/byok-backup/internal/blobstore"
	"github.com/twinit/byok-backup/internal/byok"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/job"
	"github.com/twinit/byok-backup/internal/jobqueue"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// KeySettings is the tenant's BYOK configuration; *byok.Service
// implements it.
type KeySettings interface {
	CustomerKey(ctx context.Context, tenant string) (ref keywrap.Ref, settings byok.Settings, enabled bool, err error)
	Status(ctx context.Context, tenant string) (byok.Status, error)
}

// Backups is the catalog a re-wrap reads and updates.
type Backups interface {
	GetBackup(ctx context.Context, tenant, backupID string) (*catalog.Backup, error)
	UpdateBackup(ctx context.Context, b *catalog.Backup) error
	catalog.BackupScanner
}

// Queue puts job messages on a queue; *jobqueue.Queue implements it.
type Queue interface {
	Enqueue(ctx context.Context, queue string, msg any) error
}

// Options configures a [Service]. Every field but the tuning ones is
// required.
type Options struct {
	Backups Backups
	Rewraps catalog.RewrapStore
	// Blobs is the backups container; New adds retries with backoff.
	Blobs blobstore.Store
	// Wrapper unwraps and wraps data keys: give it the audited wrapper so
	// every use is a KeyAudit row (rewrap-unwrap / rewrap-wrap).
	Wrapper keywrap.Wrapper
	Keys    KeySettings
	// PlatformKey is PLATFORM_KEY_ID as a reference.
	PlatformKey keywrap.Ref
	// URLTemplate is KEYVAULT_URL_TEMPLATE: a recorded customer key's vault
	// URL must be one it builds.
	URLTemplate string
	Leases      job.Leases
	Queue       Queue
	// QueueName is QUEUE_REWRAP_JOBS (default jobqueue.RewrapQueue).
	QueueName string
	Logger    *slog.Logger

	// Parallelism is how many backups are re-wrapped at once (default 8).
	Parallelism int
	// MaxDequeueCount is host.json's maxDequeueCount (default 5).
	MaxDequeueCount int
	// LeaseTTL, ProgressEvery and StaleAfter: as for restores (defaults
	// 2 min, 10 s, 2 min).
	LeaseTTL, ProgressEvery, StaleAfter time.Duration
	// AbandonAfter is how long a queued re-wrap may wait, or a running one
	// go without a heartbeat, before a new POST fails it and starts
	// another (default 1 h): its message was lost or poisoned, and the
	// tenant must not be blocked for ever.
	AbandonAfter time.Duration
	Retry        *blobstore.RetryOptions
	Now          func() time.Time
}

// Defaults of [Options].
const (
	DefaultParallelism     = 8
	DefaultMaxDequeueCount = 5
	DefaultLeaseTTL        = 2 * time.Minute
	DefaultProgressEvery   = 10 * time.Second
	DefaultStaleAfter      = 2 * time.Minute
	DefaultAbandonAfter    = time.Hour
)

// Service serves the Rewraps functions and runs RewrapWorker's jobs.
type Service struct {
	o     Options
	blobs blobstore.Store
	log   *slog.Logger
	// fault, set only by tests, is called after each step of one backup's
	// re-wrap; an error stops the job there, as a crash would.
	fault func(step string) error
}

// New returns a Service.
func New(o Options) (*Service, error) {
	switch {
	case o.Backups == nil, o.Rewraps == nil, o.Blobs == nil, o.Wrapper == nil, o.Keys == nil, o.Leases == nil, o.Queue == nil:
		return nil, errors.New("rewrap: Backups, Rewraps, Blobs, Wrapper, Keys, Leases and Queue are required")
	case o.PlatformKey.VaultURL == "" || o.PlatformKey.KeyName == "":
		return nil, errors.New("rewrap: PlatformKey is required")
	case o.URLTemplate == "":
		return nil, errors.New("rewrap: URLTemplate is required")
	}
	o.PlatformKey.Source = keywrap.Platform
	def(&o.Parallelism, DefaultParallelism)
	def(&o.MaxDequeueCount, DefaultMaxDequeueCount)
	def(&o.LeaseTTL, DefaultLeaseTTL)
	def(&o.ProgressEvery, DefaultProgressEvery)
	def(&o.StaleAfter, DefaultStaleAfter)
	def(&o.AbandonAfter, DefaultAbandonAfter)
	if o.QueueName == "" {
		o.QueueName = jobqueue.RewrapQueue
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	retry := blobstore.RetryOptions{Logger: o.Logger}
	if o.Retry != nil {
		retry = *o.Retry
	}
	return &Service{o: o, blobs: blobstore.NewRetry(o.Blobs, &retry), log: o.Logger}, nil
}

func def[T int | time.Duration](p *T, v T) {
	if *p <= 0 {
		*p = v
	}
}

func (s *Service) now() time.Time { return s.o.Now().UTC() }

// Request is the body of POST …/byok/rewraps.
type Request struct {
	To                     keywrap.Source
	IncludePlatformBackups bool
	DryRun                 bool
}

// Start queues a re-wrap of tenant's backups. It answers Conflict while
// another re-wrap of the tenant is queued or running, and, for a re-wrap
// to the customer key, while BYOK is not active (API.md §7).
func (s *Service) Start(ctx context.Context, tenant string, req Request) (*catalog.Rewrap, error) {
	if req.To == "" {
		req.To = keywrap.Customer
	}
	if req.To != keywrap.Customer && req.To != keywrap.Platform {
		return nil, errcode.New(errcode.InvalidRequest, "to must be customer or platform.")
	}
	if req.IncludePlatformBackups && req.To != keywrap.Customer {
		return nil, errcode.New(errcode.InvalidRequest, "includePlatformBackups applies only to a re-wrap to the customer key.")
	}
	if err := s.checkNoActive(ctx, tenant); err != nil {
		return nil, err
	}
	if req.To == keywrap.Customer {
		st, err := s.o.Keys.Status(ctx, tenant)
		if err != nil {
			return nil, fmt.Errorf("failed to read the BYOK status: %w", err)
		}
		if st.State != byok.Active {
			return nil, errcode.New(errcode.Conflict, "BYOK is %s for this tenant: a re-wrap to the customer key needs it active. Configure and validate the key first.", st.State)
		}
	}
	r := catalog.NewRewrap(tenant, req.To, req.IncludePlatformBackups, req.DryRun, s.now())
	if err := s.o.Rewraps.CreateRewrap(ctx, r); err != nil {
		return nil, fmt.Errorf("failed to record the re-wrap: %w", err)
	}
	// The row is written: queue its message even if the caller has gone,
	// or the row would stay queued with nothing to run it.
	qctx, qcancel := context.WithTimeout(context.WithoutCancel(ctx), job.FinalWriteTimeout)
	defer qcancel()
	if err := s.o.Queue.Enqueue(qctx, s.o.QueueName, jobqueue.RewrapJob{Tenant: tenant, RewrapID: r.RewrapID}); err != nil {
		// The row stays queued with no message: fail it so the tenant is
		// not blocked by a re-wrap that will never run.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), job.FinalWriteTimeout)
		defer cancel()
		if ferr := r.Fail(s.now(), errcode.Detail{Code: errcode.ServiceUnavailable, Message: "The re-wrap could not be queued. Start it again."}); ferr == nil {
			if uerr := s.o.Rewraps.UpdateRewrap(wctx, r); uerr != nil {
				s.log.WarnContext(ctx, "failed to mark an unqueued re-wrap failed", "err", uerr)
			}
		}
		return nil, errcode.Wrap(err, errcode.ServiceUnavailable, "The re-wrap could not be queued. Try again.")
	}
	return r, nil
}

// Get returns one re-wrap.
func (s *Service) Get(ctx context.Context, tenant, id string) (*catalog.Rewrap, error) {
	if !catalog.ValidID(id) {
		return nil, errcode.New(errcode.NotFound, "No such re-wrap.")
	}
	r, err := s.o.Rewraps.GetRewrap(ctx, tenant, id)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, errcode.Wrap(err, errcode.NotFound, "No such re-wrap.")
	}
	return r, err
}

// List returns one page of the tenant's re-wraps, newest first.
func (s *Service) List(ctx context.Context, tenant string, opts catalog.ListOptions) (catalog.RewrapPage, error) {
	return s.o.Rewraps.ListRewraps(ctx, tenant, opts)
}

// checkNoActive answers Conflict while the tenant has a live queued or
// running re-wrap. One that has shown no sign of life for AbandonAfter
// (its message lost or poisoned) is marked failed instead, so it blocks
// the tenant no longer; a lost race with its worker is still a Conflict.
func (s *Service) checkNoActive(ctx context.Context, tenant string) error {
	active, err := s.o.Rewraps.ActiveRewrap(ctx, tenant)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to look for an active re-wrap: %w", err)
	}
	alive := active.RequestedAt
	if active.State == catalog.RewrapRunning {
		alive = active.LastAlive()
	}
	conflict := errcode.New(errcode.Conflict, "Re-wrap %s of this tenant is %s; start another once it has ended.", active.RewrapID, active.State)
	if s.now().Sub(alive) < s.o.AbandonAfter {
		return conflict
	}
	if err := active.Fail(s.now(), errcode.Detail{Code: errcode.Internal,
		Message: "The re-wrap stopped without finishing (no sign of life for a long time) and was ended when another re-wrap was requested. Backups it re-wrapped keep their new key; the others their old one."}); err != nil {
		return conflict
	}
	if err := s.o.Rewraps.UpdateRewrap(ctx, active); err != nil {
		if errors.Is(err, catalog.ErrConflict) {
			return conflict
		}
		return fmt.Errorf("failed to end an abandoned re-wrap: %w", err)
	}
	s.log.WarnContext(ctx, "abandoned rewrap marked failed", "tenant", tenant, "rewrapId", active.RewrapID)
	return nil
}
