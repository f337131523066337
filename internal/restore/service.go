package restore

import (
	"context"
	"errors"
	"github.com/twinit/byok-backup/internal/ptr"
	"log/slog"
	"os"
	"time"

	"github.com/twinit/byok-backup/internal/blobstore"
	"github.com/twinit/byok-backup/internal/byok"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/job"
	"github.com/twinit/byok-backup/internal/jobqueue"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// KeySettings tells which Entra tenant signs in to a customer's vault;
// *byok.Service implements it.
type KeySettings interface {
	CustomerKey(ctx context.Context, tenant string) (ref keywrap.Ref, settings byok.Settings, enabled bool, err error)
}

// Leases keeps a restore from writing a tenant while a backup or another
// restore runs on it; *lease.Manager (the backups' manager) implements it.
type Leases = job.Leases

// Queue puts job messages on a queue; *azqueue.Queue of jobqueue/azqueue
// implements it.
type Queue interface {
	Enqueue(ctx context.Context, queue string, msg any) error
}

// Options configures a [Service]. Catalog, Blobs, Target, Wrapper, Keys,
// PlatformKey, URLTemplate, Leases and Queue are required.
type Options struct {
	Catalog catalog.Store
	// Blobs is the backups container; New adds retries with backoff.
	Blobs  blobstore.Store
	Target Target
	// Wrapper unwraps data keys; give it the audited wrapper
	// (audit.NewWrapper) so the unwrap is recorded with the restore's scope.
	Wrapper keywrap.Wrapper
	Keys    KeySettings
	// PlatformKey is PLATFORM_KEY_ID as a reference.
	PlatformKey keywrap.Ref
	// URLTemplate is KEYVAULT_URL_TEMPLATE: a customer key's vault URL is
	// rebuilt from it and must equal the recorded one.
	URLTemplate string
	// ApplicationID is BYOK_APP_CLIENT_ID, named in messages telling a
	// customer whom to grant access.
	ApplicationID string
	Leases        Leases
	Queue         Queue
	// QueueName is QUEUE_RESTORE_JOBS, the queue RestoreWorker's trigger
	// reads (default jobqueue.RestoreQueue).
	QueueName string
	Logger    *slog.Logger

	// Parallelism is the number of chunks of one stream in flight (default
	// 4); both streams run at once.
	Parallelism int
	// SpoolDir holds, between the passes, what the write pass needs besides
	// the staged blocks: the records' verified ciphertext and the files'
	// headers, sealed (default os.TempDir()). SpoolLimit caps them (default
	// 1 GiB): a restore whose spool would be larger fails before anything
	// in the target changes. Dry runs spool nothing.
	SpoolDir   string
	SpoolLimit int64
	// MaxDequeueCount is host.json's maxDequeueCount (default 5).
	MaxDequeueCount int
	// LeaseTTL is the target lease's lifetime, renewed every third of it
	// (default 2 min).
	LeaseTTL time.Duration
	// ProgressEvery is how often progress (the heartbeat) is persisted
	// (default 10 s); StaleAfter is the heartbeat age after which a running
	// row is taken to be a crashed attempt (default 2 min).
	ProgressEvery, StaleAfter time.Duration
	// SweepGrace is how long a running restore may go without a heartbeat
	// before [Service.Sweep] fails it (default 1 h): longer than every
	// redelivery of its message could take to restart it. A queued restore
	// waiting longer gets its job enqueued again.
	SweepGrace time.Duration
	// Retry tunes the blob retries; nil = blobstore defaults.
	Retry *blobstore.RetryOptions
	// Now is the clock; nil = time.Now.
	Now func() time.Time
}

// Defaults of [Options].
const (
	DefaultParallelism     = 4
	DefaultSpoolLimit      = 1 << 30
	DefaultMaxDequeueCount = 5
	DefaultLeaseTTL        = 2 * time.Minute
	DefaultProgressEvery   = 10 * time.Second
	DefaultStaleAfter      = 2 * time.Minute
	DefaultSweepGrace      = time.Hour
)

// Service runs restores and serves the Restores functions.
type Service struct {
	o     Options
	blobs blobstore.Store
	log   *slog.Logger
}

// New returns a Service.
func New(o Options) (*Service, error) {
	switch {
	case o.Catalog == nil, o.Blobs == nil, o.Target == nil, o.Wrapper == nil, o.Keys == nil, o.Leases == nil, o.Queue == nil:
		return nil, errors.New("restore: Catalog, Blobs, Target, Wrapper, Keys, Leases and Queue are required")
	case o.PlatformKey.VaultURL == "" || o.PlatformKey.KeyName == "":
		return nil, errors.New("restore: PlatformKey is required")
	case o.URLTemplate == "":
		return nil, errors.New("restore: URLTemplate is required")
	case o.Parallelism < 0:
		return nil, errors.New("restore: Parallelism must not be negative")
	case o.SpoolLimit < 0:
		return nil, errors.New("restore: SpoolLimit must not be negative")
	}
	o.PlatformKey.Source = keywrap.Platform
	ptr.Default(&o.Parallelism, DefaultParallelism)
	ptr.Default(&o.MaxDequeueCount, DefaultMaxDequeueCount)
	ptr.Default(&o.LeaseTTL, DefaultLeaseTTL)
	ptr.Default(&o.ProgressEvery, DefaultProgressEvery)
	ptr.Default(&o.StaleAfter, DefaultStaleAfter)
	ptr.Default(&o.SweepGrace, DefaultSweepGrace)
	if o.SpoolLimit == 0 {
		o.SpoolLimit = DefaultSpoolLimit
	}
	if o.QueueName == "" {
		o.QueueName = jobqueue.RestoreQueue
	}
	if o.SpoolDir == "" {
		o.SpoolDir = os.TempDir()
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

func (s *Service) now() time.Time { return s.o.Now().UTC() }
