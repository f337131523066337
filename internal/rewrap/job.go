package rewrap

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/job"
	"github.com/twinit/byok-backup/internal/jobqueue"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// rewrapStatuses are the backups a re-wrap covers (API.md §7).
var rewrapStatuses = []catalog.Status{catalog.StatusCompleted, catalog.StatusDeleted}

// RunJob is the RewrapWorker entry point for one decoded `rewrap-jobs`
// message. A nil return acknowledges it; an error makes the host deliver
// it again. A re-wrap that ended never runs again.
func (s *Service) RunJob(ctx context.Context, rj jobqueue.RewrapJob, d jobqueue.Delivery) error {
	if err := rj.Validate(); err != nil {
		s.log.ErrorContext(ctx, "rewrap job is invalid; it will end in the poison queue", "messageId", d.MessageID, "err", err)
		return errcode.Wrap(err, errcode.InvalidRequest, "The re-wrap job message is malformed.")
	}
	log := s.log.With("tenant", rj.Tenant, "rewrapId", rj.RewrapID, "dequeueCount", d.DequeueCount)
	o := job.Options{Leases: s.o.Leases, LeaseTTL: s.o.LeaseTTL, HeartbeatEvery: s.o.ProgressEvery,
		StaleAfter: s.o.StaleAfter, MaxDequeueCount: s.o.MaxDequeueCount, Now: s.o.Now}
	return job.Run(ctx, o, s.spec(rj), d.DequeueCount, log)
}

// progress is the running attempt's counts, persisted with every heartbeat.
type progress struct {
	mu       sync.Mutex
	p        catalog.RewrapProgress
	failures []catalog.RewrapFailure
}

func (p *progress) add(f func(*catalog.RewrapProgress)) {
	p.mu.Lock()
	f(&p.p)
	p.mu.Unlock()
}

func (p *progress) fail(backupID string, d errcode.Detail) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.p.Failed++
	if len(p.failures) < catalog.MaxRewrapFailures {
		p.failures = append(p.failures, catalog.RewrapFailure{BackupID: backupID, Code: d.Code, Message: d.Message})
	}
}

func (p *progress) apply(r *catalog.Rewrap) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r.Progress = p.p
	r.Failures = append([]catalog.RewrapFailure(nil), p.failures...)
}

func (s *Service) spec(rj jobqueue.RewrapJob) job.Spec[*catalog.Rewrap] {
	prog := &progress{}
	set := func(r *catalog.Rewrap, now time.Time) error {
		prog.apply(r)
		if r.State == catalog.RewrapRunning {
			r.HeartbeatAt = now
		}
		return nil
	}
	return job.Spec[*catalog.Rewrap]{
		Kind: "rewrap",
		Load: func(ctx context.Context) (*catalog.Rewrap, error) {
			return s.o.Rewraps.GetRewrap(ctx, rj.Tenant, rj.RewrapID)
		},
		Write: s.o.Rewraps.UpdateRewrap,
		// The tenant's one lease: a re-wrap never overlaps a backup or a
		// restore of the tenant (a backup committing a manifest, a restore
		// reading one).
		Lease:  func(r *catalog.Rewrap) (string, string) { return r.Tenant, "rewrap:" + r.RewrapID },
		Beat:   set,
		Settle: set,
		Work: func(ctx context.Context, a *job.Attempt[*catalog.Rewrap]) (func(*catalog.Rewrap) error, error) {
			r := a.Keeper.Snapshot()
			a.Log.InfoContext(ctx, "rewrap running", "to", r.To, "includePlatformBackups", r.IncludePlatformBackups, "dryRun", r.DryRun)
			if err := s.execute(ctx, r, prog, a.Log); err != nil {
				return nil, err
			}
			return func(r *catalog.Rewrap) error { return r.Succeed(s.now()) }, nil
		},
		Committed: func(ctx context.Context, a *job.Attempt[*catalog.Rewrap], r *catalog.Rewrap) {
			p := r.Progress
			a.Log.InfoContext(ctx, "rewrap succeeded", "total", p.Total, "done", p.Done, "skipped", p.Skipped, "failed", p.Failed)
		},
	}
}

// target is the key a re-wrap wraps with.
type target struct {
	ref   keywrap.Ref // pinned to one version for a customer key
	keyID string      // versioned id of that version
}

// targetKey resolves the key every backup of this run is wrapped with: the
// platform key, or the current version of the tenant's configured key
// (read once, so every backup gets the same version).
func (s *Service) targetKey(ctx context.Context, r *catalog.Rewrap) (target, error) {
	if r.To == keywrap.Platform {
		ref := s.o.PlatformKey
		info, err := s.o.Wrapper.Inspect(ctx, ref)
		if err != nil {
			return target{}, errcode.Wrap(err, errcode.ServiceUnavailable, "The platform key could not be read; the re-wrap is retried.")
		}
		ref.Version = info.Version
		return target{ref: ref, keyID: info.KeyID}, nil
	}
	ref, set, enabled, err := s.o.Keys.CustomerKey(ctx, r.Tenant)
	if err != nil {
		return target{}, fmt.Errorf("failed to read the BYOK settings: %w", err)
	}
	if !enabled {
		return target{}, job.Permanent(errcode.New(errcode.Conflict, "BYOK was turned off for this tenant before the re-wrap ran, so there is no customer key to re-wrap with. Configure BYOK and start the re-wrap again."))
	}
	ref.Source = keywrap.Customer
	info, err := s.o.Wrapper.Inspect(ctx, ref)
	if err != nil {
		return target{}, keyFailure(err, "The customer key %s in vault %s could not be read (%s): %s", set.KeyName, set.KeyVaultName)
	}
	ref.Version = info.Version
	return target{ref: ref, keyID: info.KeyID}, nil
}

// keyFailure turns a key error into the job's outcome: a customer's
// definitive refusal fails the re-wrap at once, anything else is retried.
func keyFailure(err error, format, name, vault string) error {
	code, msg := errcode.Public(err)
	out := errcode.Wrap(err, code, format, name, vault, code, msg)
	switch code {
	case errcode.KeyVaultUnreachable, errcode.Throttled, errcode.Internal, errcode.ServiceUnavailable:
		return out
	}
	return job.Permanent(out)
}

// execute runs one attempt: it scans the tenant's completed and deleted
// backups a page at a time and re-wraps each that needs it, Parallelism at
// once. Memory is one page plus the backups in flight.
func (s *Service) execute(ctx context.Context, r *catalog.Rewrap, prog *progress, log *slog.Logger) error {
	var t target
	if !r.DryRun {
		var err error
		if t, err = s.targetKey(ctx, r); err != nil {
			return err
		}
	} else if r.To == keywrap.Customer {
		// A dry run only needs the current version's id to count.
		ref, _, enabled, err := s.o.Keys.CustomerKey(ctx, r.Tenant)
		if err != nil {
			return fmt.Errorf("failed to read the BYOK settings: %w", err)
		}
		if !enabled {
			return job.Permanent(errcode.New(errcode.Conflict, "BYOK was turned off for this tenant before the re-wrap ran."))
		}
		info, err := s.o.Wrapper.Inspect(ctx, ref)
		if err != nil {
			return keyFailure(err, "The customer key %s in vault %s could not be read (%s): %s", ref.KeyName, keywrap.VaultName(ref.VaultURL))
		}
		t = target{ref: ref, keyID: info.KeyID}
	}
	retry := r.Attempts > 1
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan *catalog.Backup)
	var wg sync.WaitGroup
	for range s.o.Parallelism {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				if err := s.one(ctx, r, t, b, retry, prog, log); err != nil {
					cancel(err)
				}
			}
		}()
	}
	scanErr := s.o.Backups.ScanBackups(ctx, r.Tenant, catalog.ScanOptions{Statuses: rewrapStatuses}, func(b *catalog.Backup) error {
		prog.add(func(p *catalog.RewrapProgress) { p.Total++ })
		select {
		case work <- b:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	close(work)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return scanErr
}

// needs reports whether b is to be re-wrapped towards t.
func needs(r *catalog.Rewrap, t target, b *catalog.Backup) bool {
	switch {
	case r.To == keywrap.Platform:
		return b.KeySource == keywrap.Customer
	case b.KeySource == keywrap.Customer:
		return b.KeyID != t.keyID
	case b.KeySource == keywrap.Platform:
		return r.IncludePlatformBackups
	}
	return false
}
