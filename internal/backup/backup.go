package backup

import (
	"context"
	"errors"
	"github.com/twinit/byok-backup/internal/ptr"
	"github.com/twinit/byok-backup/internal/retention"
	"iter"
	"log/slog"
	"time"

	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/blobstore"
	"github.com/twinit/byok-backup/internal/byok"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/envelope"
	"github.com/twinit/byok-backup/internal/job"
	"github.com/twinit/byok-backup/internal/jobqueue"
	"github.com/twinit/byok-backup/internal/keywrap"
	"github.com/twinit/byok-backup/internal/tenants"
)

// Stream ids and names of a backup (blobstore.StreamRecords …), kept here
// for the package's callers.
const (
	StreamRecords = blobstore.StreamRecords
	StreamFiles   = blobstore.StreamFiles
)

// StreamName is [blobstore.StreamName].
func StreamName(id uint32) string { return blobstore.StreamName(id) }

// Source reads a tenant's assets; the Azure adapter (assets/azure) and the
// in-memory store (assets/mem) implement it.
type Source = assets.Source

// KeySettings tells which key wraps a tenant's data key and records how
// using it went; *byok.Service implements it.
type KeySettings interface {
	CustomerKey(ctx context.Context, tenant string) (ref keywrap.Ref, settings byok.Settings, enabled bool, err error)
	RecordKeyUse(ctx context.Context, tenant string, useErr error) error
}

// Leases keeps two backups of one tenant from running at once;
// *lease.Manager implements it.
type Leases = job.Leases

// Queue puts job messages on a queue; *azqueue.Queue of jobqueue/azqueue
// implements it.
type Queue interface {
	Enqueue(ctx context.Context, queue string, msg any) error
}

// DelayedQueue is a Queue that can hide a message for a delay; a backup
// waiting out a transient key failure is retried by such a message.
// *azqueue.Queue of jobqueue/azqueue implements it. With a Queue that
// doesn't, the wait falls back on the host's redelivery (maxDequeueCount ×
// visibilityTimeout).
type DelayedQueue interface {
	EnqueueAfter(ctx context.Context, queue string, msg any, delay time.Duration) error
}

// Tenants lists the tenants with backups enabled and says whether a tenant
// exists; *aztable.Directory of tenants/aztable implements it.
type Tenants interface {
	Enabled(ctx context.Context, counts *tenants.Counts) iter.Seq2[string, error]
	// Exists reports whether the tenant has a Tenants row; a backup-jobs
	// message without a catalog row is adopted only for such a tenant.
	Exists(ctx context.Context, tenant string) (bool, error)
}

// Schedule is the backup timer's schedule (config.ParseSchedule of
// BACKUP_SCHEDULE); *cron.SpecSchedule implements it.
type Schedule interface {
	Next(time.Time) time.Time
}

// Options configures a [Service]. Source, Catalog, Blobs, Wrapper, Keys,
// PlatformKey, Leases and Queue are required; Tenants for the scheduler and
// for adopting a job message that has no catalog row (without it, such a
// message is refused).
type Options struct {
	Source  Source
	Catalog catalog.Store
	// Blobs is the backups container. New adds retries with backoff
	// (blobstore.NewRetry with Retry) on top of it.
	Blobs blobstore.Store
	// Wrapper wraps data keys; give it the audited wrapper
	// (audit.NewWrapper) so each wrap is recorded with the backup's scope.
	Wrapper keywrap.Wrapper
	Keys    KeySettings
	// PlatformKey is PLATFORM_KEY_ID as a reference.
	PlatformKey keywrap.Ref
	Leases      Leases
	// RequestLeases, when set, serialises POST …/backups per tenant (a
	// lease manager of its own scope, e.g. "backup-request", on the Leases
	// table), so concurrent POSTs make one backup; without it two POSTs
	// that race can both queue one.
	RequestLeases Leases
	Queue         Queue
	// QueueName is QUEUE_BACKUP_JOBS, the queue BackupWorker's trigger
	// reads (default jobqueue.BackupQueue).
	QueueName string
	Tenants   Tenants
	// Schedule, when set, makes scheduled backup ids deterministic per
	// tenant and schedule slot, so a timer that fires twice for one slot
	// starts no second backup. Without it the slot is the minute.
	Schedule Schedule
	Logger   *slog.Logger

	ChunkSize   int // BACKUP_CHUNK_SIZE; 0 = envelope.DefaultChunkSize
	Parallelism int // BACKUP_PARALLELISM; 0 = 4
	// ScheduleParallelism is how many tenants the scheduler schedules at
	// once (row + message each); 0 = DefaultScheduleParallelism. The
	// fan-out is latency-bound, so one tenant at a time would take
	// thousands of round trips end to end.
	ScheduleParallelism int

	// MaxDequeueCount is host.json's extensions.queues.maxDequeueCount
	// (default 5): on that delivery a job that can't run is marked failed
	// instead of being retried into the poison queue.
	MaxDequeueCount int
	// LeaseTTL is the tenant lease's lifetime, renewed every third of it
	// (default 2 min).
	LeaseTTL time.Duration
	// HeartbeatEvery is how often a running backup's row is touched (default
	// 20 s); StaleAfter is the heartbeat age after which a running row is
	// taken to be a crashed attempt (default 2 min).
	HeartbeatEvery, StaleAfter time.Duration
	// SweepGrace is the heartbeat age after which the sweep fails a
	// running backup (default 1 h, well past a retried job's last delivery),
	// and how long a queued backup waits before its job is enqueued again.
	SweepGrace time.Duration
	// TransientGrace is BYOK_TRANSIENT_GRACE (default 15 min): how long
	// after a backup's first attempt a transient customer key failure is
	// retried before the backup falls back (API.md §5).
	TransientGrace time.Duration
	// TransientRetryDelay is how long a backup waiting out a transient key
	// failure stays queued before its next attempt; 0 = derived from the
	// grace (see [retryDelay]).
	TransientRetryDelay time.Duration
	// FailedRetention is how long a failed backup keeps its blobs before
	// the sweep deletes them (API.md §6: 24 h); its row is kept.
	FailedRetention time.Duration
	// MaxDeleteFraction is RETENTION_MAX_DELETE_FRACTION: a sweep that would
	// delete the blobs of more than this fraction of a tenant's backups
	// deletes nothing for the tenant (default 0.5).
	MaxDeleteFraction float64
	// Policies holds the tenants' retention policies (API.md §6); the
	// retention run and the policy API need it.
	Policies retention.Store
	// RetentionDefault is RETENTION_DEFAULT, the policy of a tenant that
	// stored none (the zero policy keeps everything).
	RetentionDefault retention.Policy
	// SoftDeleteDays is BACKUP_SOFT_DELETE_DAYS (default 14): how long a
	// deleted backup keeps its blobs and can be undeleted.
	SoftDeleteDays int
	// SoftDeleteWindow, when positive, replaces SoftDeleteDays: the local
	// stack's DEV_SOFT_DELETE_WINDOW (config accepts it only with the
	// emulator credential).
	SoftDeleteWindow time.Duration
	// Retry tunes the blob retries; nil = blobstore defaults.
	Retry *blobstore.RetryOptions
	// Now is the clock; nil = time.Now.
	Now func() time.Time
}

// Service makes backups and serves the Backups functions.
type Service struct {
	o     Options
	blobs blobstore.Store
	log   *slog.Logger
	now   func() time.Time
}

// Defaults.
const (
	DefaultParallelism = 4
	// DefaultScheduleParallelism: 16 requests in flight is far below Table
	// and Queue Storage's per-account targets (20,000 requests/s).
	DefaultScheduleParallelism = 16
	DefaultMaxDequeueCount     = 5
	DefaultLeaseTTL            = 2 * time.Minute
	DefaultHeartbeatEvery      = 20 * time.Second
	DefaultStaleAfter          = 2 * time.Minute
	DefaultSweepGrace          = time.Hour
	DefaultTransientGrace      = 15 * time.Minute
	DefaultFailedRetention     = 24 * time.Hour
	// DefaultMaxDeleteFraction is config.DefaultRetentionMaxDeleteFraction.
	DefaultMaxDeleteFraction = 0.5
)

// New returns a Service.
func New(o Options) (*Service, error) {
	switch {
	case o.Source == nil, o.Catalog == nil, o.Blobs == nil, o.Wrapper == nil, o.Keys == nil,
		o.Leases == nil, o.Queue == nil:
		return nil, errors.New("backup: Source, Catalog, Blobs, Wrapper, Keys, Leases and Queue are required")
	case o.PlatformKey.VaultURL == "" || o.PlatformKey.KeyName == "":
		return nil, errors.New("backup: PlatformKey is required")
	case o.ChunkSize < 0 || o.ChunkSize > envelope.MaxChunkSize:
		return nil, errors.New("backup: ChunkSize out of range")
	case o.Parallelism < 0, o.ScheduleParallelism < 0:
		return nil, errors.New("backup: Parallelism and ScheduleParallelism must not be negative")
	case !(o.MaxDeleteFraction >= 0 && o.MaxDeleteFraction <= 1):
		return nil, errors.New("backup: MaxDeleteFraction must be between 0 and 1")
	}
	o.PlatformKey.Source = keywrap.Platform
	if o.ChunkSize == 0 {
		o.ChunkSize = envelope.DefaultChunkSize
	}
	if o.QueueName == "" {
		o.QueueName = jobqueue.BackupQueue
	}
	ptr.Default(&o.Parallelism, DefaultParallelism)
	ptr.Default(&o.ScheduleParallelism, DefaultScheduleParallelism)
	ptr.Default(&o.MaxDequeueCount, DefaultMaxDequeueCount)
	ptr.Default(&o.LeaseTTL, DefaultLeaseTTL)
	ptr.Default(&o.HeartbeatEvery, DefaultHeartbeatEvery)
	ptr.Default(&o.StaleAfter, DefaultStaleAfter)
	ptr.Default(&o.SweepGrace, DefaultSweepGrace)
	ptr.Default(&o.TransientGrace, DefaultTransientGrace)
	ptr.Default(&o.FailedRetention, DefaultFailedRetention)
	ptr.Default(&o.SoftDeleteDays, DefaultSoftDeleteDays)
	if o.MaxDeleteFraction == 0 {
		o.MaxDeleteFraction = DefaultMaxDeleteFraction
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
	return &Service{o: o, blobs: blobstore.NewRetry(o.Blobs, &retry), log: o.Logger, now: o.Now}, nil
}

// DefaultSoftDeleteDays is BACKUP_SOFT_DELETE_DAYS' default.
const DefaultSoftDeleteDays = 14
