package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	assetsazure "github.com/twinit/byok-backup/internal/assets/azure"
	"github.com/twinit/byok-backup/internal/devstack/seed"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/tenants"
)

// Options configure [Run].
type Options struct {
	Tenants, Kills   int
	Seed             uint64
	Records, Files   int
	FileSize         int64
	MinGap, MaxGap   time.Duration // from the handler answering again to the next kill
	Drain            time.Duration // bound on letting jobs finish after the last kill
	SweepGrace       time.Duration // JOB_SWEEP_GRACE of the soak's handler (default 1 min)
	HandlerLog       string        // file for the handler's log lines; empty = discarded
	Src              string        // repository root; empty = found from the working directory
	Log              *slog.Logger
	StepMin, StepMax time.Duration
	Instances        int               // runners started at once (default 1)
	Settings         map[string]string // app settings over the soak's own
}

func (o *Options) defaults() {
	if o.Tenants <= 0 {
		o.Tenants = 4
	}
	if o.MinGap <= 0 {
		o.MinGap = 2 * time.Second
	}
	if o.MaxGap < o.MinGap {
		o.MaxGap = o.MinGap
	}
	if o.Drain <= 0 {
		o.Drain = 5 * time.Minute
	}
	if o.SweepGrace <= 0 {
		o.SweepGrace = defaultSweepGrace
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.StepMin <= 0 {
		o.StepMin = 500 * time.Millisecond
	}
	if o.StepMax < o.StepMin {
		o.StepMax = 3 * o.StepMin
	}
}

// Figures is what one soak measured. The fields named in [Figures.Violations]
// must be 0; the rest describe the run.
type Figures struct {
	Tenants, Kills int
	Duration       time.Duration

	BackupPosts, SchedulerRuns        int // requests the soak made
	BackupsCompleted, BackupsFailed   int // catalog rows at the end
	ScheduledBackups                  int // completed rows made by the scheduler
	RestorePosts, DryRunPosts         int
	RestoresSucceeded, RestoresFailed int // replace restores
	DryRunsSucceeded, DryRunsFailed   int
	Unfinished                        int // jobs still queued or running when the drain ended
	UnfinishedRunning                 int // of those, running: a killed attempt nothing took over or failed
	Poisoned                          int // messages in the poison queues
	HandlerStarts                     int // "starting" lines: the first start and one per restart
	BackupStarts, RestoreStarts       int // attempts started (retries, takeovers and the verification included)
	RetriedJobs                       int // backups and restores that needed more than one attempt
	TakenOver                         int // running jobs whose attempt died and that a redelivery took over
	SweptStale                        int // running jobs the sweeps failed (no redelivery took them over)

	VerifyFailed      int // completed backups whose dry run after the soak failed
	DuplicateBackups  int // a backup completed twice, or two completed rows for one scheduler slot
	DuplicateRestores int // a restore succeeded twice, or started again after succeeding
	TargetsCompared   int
	TargetsDiffering  int // succeeded restores whose target differs from the backup's content

	OrphanPrefixes, OrphanBlobs int // blobs under backups/ without a catalog row, after the sweeps
	FailedRowBlobs              int // blobs still under failed backups after the sweeps

	Notes []string // jobs that did not finish, and anything else worth a look
}

// Violations lists the broken invariants.
func (f *Figures) Violations() []string {
	var v []string
	for _, c := range []struct {
		name string
		n    int
	}{
		{"completed backups failing verification", f.VerifyFailed},
		{"duplicate backups", f.DuplicateBackups},
		{"duplicate restores", f.DuplicateRestores},
		{"restore targets differing from the backup", f.TargetsDiffering},
	} {
		if c.n != 0 {
			v = append(v, fmt.Sprintf("%s: %d", c.name, c.n))
		}
	}
	return v
}

// Print writes the figures as a table.
func (f *Figures) Print(w io.Writer) {
	row := func(k string, v any) { fmt.Fprintf(w, "| %-52s | %10v |\n", k, v) }
	fmt.Fprintf(w, "| %-52s | %10s |\n|%s|%s|\n", "figure", "value", strings.Repeat("-", 54), strings.Repeat("-", 12))
	row("tenants", f.Tenants)
	row("handler kills (SIGKILL)", f.Kills)
	row("duration", f.Duration.Round(time.Second))
	row("backup POSTs / scheduler runs fired", fmt.Sprintf("%d / %d", f.BackupPosts, f.SchedulerRuns))
	row("backups completed / failed", fmt.Sprintf("%d / %d", f.BackupsCompleted, f.BackupsFailed))
	row("  of the completed: scheduled", f.ScheduledBackups)
	row("replace restores requested / succeeded / failed", fmt.Sprintf("%d / %d / %d", f.RestorePosts, f.RestoresSucceeded, f.RestoresFailed))
	row("dry runs requested / succeeded / failed", fmt.Sprintf("%d / %d / %d", f.DryRunPosts, f.DryRunsSucceeded, f.DryRunsFailed))
	row("handler starts (first + restarts)", f.HandlerStarts)
	row("backup / restore attempts started (all phases)", fmt.Sprintf("%d / %d", f.BackupStarts, f.RestoreStarts))
	row("jobs that needed more than one attempt", f.RetriedJobs)
	row("killed jobs taken over by a redelivery", f.TakenOver)
	row("killed jobs failed by the sweeps", f.SweptStale)
	row("jobs unfinished after the drain / of them running", fmt.Sprintf("%d / %d", f.Unfinished, f.UnfinishedRunning))
	row("poison messages", f.Poisoned)
	row("completed backups failing verification (must be 0)", f.VerifyFailed)
	row("duplicate backups (must be 0)", f.DuplicateBackups)
	row("duplicate restores (must be 0)", f.DuplicateRestores)
	row("restore targets compared", f.TargetsCompared)
	row("restore targets differing (must be 0)", f.TargetsDiffering)
	row("backup prefixes / blobs without a row after sweeps", fmt.Sprintf("%d / %d", f.OrphanPrefixes, f.OrphanBlobs))
	row("blobs left under failed backups after sweeps", f.FailedRowBlobs)
	for _, n := range f.Notes {
		fmt.Fprintln(w, "note:", n)
	}
}

// soak is one run: the stack, the seeded tenants and what was requested.
type soak struct {
	*stack
	f       Figures
	mu      sync.Mutex
	rng     *rand.Rand
	sources []string
	digest  map[string]string // source tenant -> digest of its assets
	targets []restoreTarget
	nextTgt int
}

type restoreTarget struct{ source, target string }

// Run runs one soak and returns its figures; an error means the soak
// itself could not run (the figures then say how far it got).
func Run(ctx context.Context, o Options) (*Figures, error) {
	o.defaults()
	began := time.Now()
	st, err := start(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("start the stack: %w", err)
	}
	defer st.close()
	s := &soak{stack: st, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x5eed)), digest: map[string]string{}}
	s.f.Tenants = o.Tenants
	defer func() { s.f.Duration = time.Since(began) }()
	if err := s.seed(ctx); err != nil {
		return &s.f, fmt.Errorf("seed: %w", err)
	}
	if err := s.chaos(ctx); err != nil {
		return &s.f, err
	}
	if err := s.drain(ctx); err != nil {
		return &s.f, err
	}
	if err := s.check(ctx); err != nil {
		return &s.f, err
	}
	return &s.f, nil
}

func (s *soak) seed(ctx context.Context) error {
	for i := range s.o.Tenants {
		t := fmt.Sprintf("soak-%d", i)
		if _, err := seed.Tenant(ctx, s.store, t, seed.Options{Records: s.o.Records, Files: s.o.Files, FileSize: s.o.FileSize, Seed: s.o.Seed + uint64(i)}); err != nil {
			return err
		}
		if err := s.tenants.Put(ctx, tenants.Tenant{ID: t, BackupEnabled: true}); err != nil {
			return err
		}
		d, err := digest(ctx, s.store, t)
		if err != nil {
			return err
		}
		s.sources = append(s.sources, t)
		s.digest[t] = d
	}
	return nil
}

// chaos runs the workload while the killer sends its kills.
func (s *soak) chaos(ctx context.Context) error {
	// Stopping ends the loops between requests, never during one: an
	// abandoned request is a client disconnect, not a crash.
	stop, stopWork := context.WithCancel(context.Background())
	defer stopWork()
	var wg sync.WaitGroup
	for i, t := range s.sources {
		rng := rand.New(rand.NewPCG(s.o.Seed, uint64(i)+1))
		wg.Go(func() { s.tenantLoop(ctx, stop, t, rng) })
	}
	wg.Go(func() { s.timerLoop(ctx, stop) })
	err := s.killer(ctx)
	stopWork()
	wg.Wait()
	return err
}

// killer sends o.Kills SIGKILLs to the handler. Each waits a random gap
// after the handler answered again, then for the next backup or restore
// attempt to start (at most aimWait), then 0–aimJitter more: so kills land
// at random points inside jobs rather than mostly between them.
func (s *soak) killer(ctx context.Context) error {
	const aimWait, aimJitter = 10 * time.Second, 150 * time.Millisecond
	for s.f.Kills < s.o.Kills {
		if err := s.handlerUp(ctx); err != nil {
			return fmt.Errorf("waiting for the handler before kill %d: %w", s.f.Kills+1, err)
		}
		s.mu.Lock()
		gap := s.o.MinGap + time.Duration(s.rng.Int64N(int64(s.o.MaxGap-s.o.MinGap)+1))
		jitter := time.Duration(s.rng.Int64N(int64(aimJitter) + 1))
		s.mu.Unlock()
		if err := sleep(ctx, gap); err != nil {
			return err
		}
		select {
		case <-s.events.started: // an attempt that started before the gap ended
		default:
		}
		select {
		case <-s.events.started:
		case <-time.After(aimWait):
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := sleep(ctx, jitter); err != nil {
			return err
		}
		pid := s.run.HandlerPID()
		if pid == 0 {
			continue // it died by itself; wait for the restart
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return fmt.Errorf("kill %d: %w", pid, err)
		}
		s.f.Kills++
		s.o.Log.Info("handler killed", "pid", pid, "kill", s.f.Kills)
	}
	return s.handlerUp(ctx)
}

// tenantLoop is one tenant's workload, a step every StepMin–StepMax: an
// on-demand backup (40 %), or, once the tenant has a completed backup, a
// replace restore of one into a fresh sandbox tenant (30 %) or a dry run
// (30 %).
func (s *soak) tenantLoop(ctx, stop context.Context, tenant string, rng *rand.Rand) {
	token, err := s.issuer.Token(tenant, "backup.operator", "byok.read", "platform.operator")
	if err != nil {
		s.note("token: %v", err)
		return
	}
	for stop.Err() == nil && ctx.Err() == nil {
		switch pick := rng.IntN(10); {
		case pick < 4:
			// A lost answer is retried: POST …/backups answers the tenant's
			// queued or running backup again (API.md §2).
			for try := 0; try < 5 && stop.Err() == nil && ctx.Err() == nil; try++ {
				code, _, err := s.call(ctx, http.MethodPost, "/api/tenants/"+tenant+"/backups", token, "", nil)
				if err == nil && code == http.StatusAccepted {
					s.count(&s.f.BackupPosts)
					break
				}
				_ = sleep(ctx, 300*time.Millisecond)
			}
		default:
			if id := s.completedBackup(ctx, tenant, rng); id != "" {
				s.restore(ctx, tenant, token, id, pick >= 7)
			}
		}
		_ = sleep(stop, s.o.StepMin+time.Duration(rng.Int64N(int64(s.o.StepMax-s.o.StepMin)+1)))
	}
}

// restore requests one restore. Its POST is not retried: a lost answer
// may hide a created restore, and a second one would not be the same job.
func (s *soak) restore(ctx context.Context, tenant, token, backupID string, dryRun bool) {
	body := fmt.Sprintf(`{"backupId":%q,"dryRun":true}`, backupID)
	target := ""
	if !dryRun {
		s.mu.Lock()
		target = fmt.Sprintf("%s-r%d", tenant, s.nextTgt)
		s.nextTgt++
		s.mu.Unlock()
		// Something to replace: other records and files, some under the
		// same keys as the source's.
		if _, err := seed.Tenant(ctx, s.store, target, seed.Options{Records: 5, Files: 2, FileSize: 4 << 10, Seed: 1 << 40}); err != nil {
			s.note("seed %s: %v", target, err)
			return
		}
		body = fmt.Sprintf(`{"backupId":%q,"targetTenant":%q,"mode":"replace"}`, backupID, target)
	}
	code, _, err := s.call(ctx, http.MethodPost, "/api/tenants/"+tenant+"/restores", token, body, nil)
	if err != nil || code != http.StatusAccepted {
		return
	}
	if dryRun {
		s.count(&s.f.DryRunPosts)
		return
	}
	s.count(&s.f.RestorePosts)
	s.mu.Lock()
	s.targets = append(s.targets, restoreTarget{tenant, target})
	s.mu.Unlock()
}

// completedBackup picks one of the tenant's completed backups at random.
func (s *soak) completedBackup(ctx context.Context, tenant string, rng *rand.Rand) string {
	bs, err := s.backups(ctx, tenant)
	if err != nil {
		return ""
	}
	var ids []string
	for _, b := range bs {
		if b.Status == catalog.StatusCompleted {
			ids = append(ids, b.BackupID)
		}
	}
	if len(ids) == 0 {
		return ""
	}
	return ids[rng.IntN(len(ids))]
}

// timerLoop fires the scheduler (backups and the backup sweep) and the
// monitor (restore sweep) on demand now and then, besides their schedules.
func (s *soak) timerLoop(ctx, stop context.Context) {
	for stop.Err() == nil && ctx.Err() == nil {
		s.fire(ctx, "BackupScheduler")
		s.count(&s.f.SchedulerRuns)
		s.fire(ctx, "ByokMonitor")
		_ = sleep(stop, 7*time.Second)
	}
}

func (s *soak) fire(ctx context.Context, fn string) {
	code, body, err := s.call(ctx, http.MethodPost, "/admin/functions/"+fn, "", `{"input":""}`, nil)
	if err != nil || code != http.StatusAccepted {
		s.o.Log.Info("timer run not accepted", "function", fn, "code", code, "body", body, "err", err)
	}
}

// drain lets every job end: no new requests, the sweeps keep running on
// their schedules; it waits until no backup or restore is queued or running.
func (s *soak) drain(ctx context.Context) error {
	deadline := time.Now().Add(s.o.Drain)
	for {
		open, err := s.unfinished(ctx)
		if err != nil {
			return err
		}
		if len(open) == 0 {
			break
		}
		if time.Now().After(deadline) {
			s.f.Unfinished = len(open)
			for _, n := range open {
				if strings.Contains(n, " running ") {
					s.f.UnfinishedRunning++
				}
				s.note("unfinished after the drain: %s", n)
			}
			break
		}
		s.fire(ctx, "BackupScheduler")
		s.fire(ctx, "ByokMonitor")
		if err := sleep(ctx, 3*time.Second); err != nil {
			return err
		}
	}
	// A last sweep once every failure is older than the grace, so what the
	// sweeps would delete is gone before the blobs are counted.
	if err := sleep(ctx, s.o.SweepGrace+2*time.Second); err != nil {
		return err
	}
	// The run logs its end; the cron may end one first, so wait for two.
	before := s.events.count("backup scheduler run")
	s.fire(ctx, "BackupScheduler")
	for wait := time.Now().Add(time.Minute); s.events.count("backup scheduler run") < before+2; {
		if time.Now().After(wait) {
			return errors.New("the last scheduler run (the backup sweep) did not end within a minute")
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// unfinished names the backups and restores still queued or running.
func (s *soak) unfinished(ctx context.Context) ([]string, error) {
	var open []string
	for _, t := range s.sources {
		bs, err := s.backups(ctx, t)
		if err != nil {
			return nil, err
		}
		for _, b := range bs {
			if b.Status == catalog.StatusQueued || b.Status == catalog.StatusRunning {
				open = append(open, fmt.Sprintf("backup %s/%s %s (attempts %d)", t, b.BackupID, b.Status, b.Attempts))
			}
		}
		rs, err := s.restores(ctx, t)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			if r.State == catalog.RestoreQueued || r.State == catalog.RestoreRunning {
				open = append(open, fmt.Sprintf("restore %s/%s %s (attempts %d)", t, r.RestoreID, r.State, r.Attempts))
			}
		}
	}
	return open, nil
}

// check counts outcomes and checks the invariants.
func (s *soak) check(ctx context.Context) error {
	var completed []*catalog.Backup
	slots := map[string]int{}
	for _, t := range s.sources {
		bs, err := s.backups(ctx, t)
		if err != nil {
			return err
		}
		for _, b := range bs {
			if b.Attempts > 1 {
				s.f.RetriedJobs++
			}
			switch b.Status {
			case catalog.StatusCompleted:
				s.f.BackupsCompleted++
				completed = append(completed, b)
				if b.Reason == catalog.ReasonSchedule {
					s.f.ScheduledBackups++
					slots[t+"/"+b.RequestedAt.UTC().Truncate(20*time.Second).Format(time.RFC3339)]++
				}
			case catalog.StatusFailed:
				s.f.BackupsFailed++
			}
		}
		rs, err := s.restores(ctx, t)
		if err != nil {
			return err
		}
		for _, r := range rs {
			if r.Attempts > 1 {
				s.f.RetriedJobs++
			}
			ok, failed := r.State == catalog.RestoreSucceeded, r.State == catalog.RestoreFailed
			switch {
			case r.DryRun && ok:
				s.f.DryRunsSucceeded++
			case r.DryRun && failed:
				s.f.DryRunsFailed++
			case ok:
				s.f.RestoresSucceeded++
			case failed:
				s.f.RestoresFailed++
			}
			if failed {
				s.note("restore %s failed: %s", r.RestoreID, detail(r.Error))
			}
		}
	}
	for _, n := range slots {
		if n > 1 {
			s.f.DuplicateBackups++
		}
	}
	dupB, dupR := s.events.duplicates()
	s.f.DuplicateBackups += dupB
	s.f.DuplicateRestores = dupR
	if err := s.verifyAll(ctx, completed); err != nil {
		return err
	}
	e := s.events
	s.f.HandlerStarts = e.count("starting")
	s.f.BackupStarts, s.f.RestoreStarts = e.count("backup started"), e.count("restore started")
	s.f.TakenOver = e.count("taking over a backup whose attempt stopped") + e.count("restarting a restore whose attempt stopped")
	s.f.SweptStale = e.count("stale running backup marked failed") + e.count("stale running restore marked failed")
	if err := s.compareTargets(ctx); err != nil {
		return err
	}
	if err := s.countOrphans(ctx); err != nil {
		return err
	}
	return s.countPoison(ctx)
}

// verifyAll dry-runs every completed backup, now that nothing kills the handler.
func (s *soak) verifyAll(ctx context.Context, bs []*catalog.Backup) error {
	type job struct{ tenant, id, backup string }
	var jobs []job
	for _, b := range bs {
		token, err := s.issuer.Token(b.Tenant, "backup.operator")
		if err != nil {
			return err
		}
		var r struct {
			RestoreID string `json:"restoreId"`
		}
		code, body, err := s.call(ctx, http.MethodPost, "/api/tenants/"+b.Tenant+"/restores", token,
			fmt.Sprintf(`{"backupId":%q,"dryRun":true}`, b.BackupID), &r)
		if err != nil || code != http.StatusAccepted {
			return fmt.Errorf("verify %s/%s: %d %s %v", b.Tenant, b.BackupID, code, body, err)
		}
		jobs = append(jobs, job{b.Tenant, r.RestoreID, b.BackupID})
	}
	deadline := time.Now().Add(s.o.Drain)
	for _, j := range jobs {
		for {
			r, err := s.cat.GetRestore(ctx, j.tenant, j.id)
			if err != nil {
				return err
			}
			if r.State == catalog.RestoreFailed {
				s.f.VerifyFailed++
				s.note("backup %s/%s fails verification: %s", j.tenant, j.backup, detail(r.Error))
			}
			if r.State == catalog.RestoreSucceeded || r.State == catalog.RestoreFailed {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("verification of %s/%s did not end within %s", j.tenant, j.backup, s.o.Drain)
			}
			if err := sleep(ctx, 300*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}

// compareTargets checks that every sandbox a restore succeeded into holds
// exactly its source's assets. Sources never change during the soak, so
// every backup of a tenant has the same content.
func (s *soak) compareTargets(ctx context.Context) error {
	succeeded := map[string]bool{}
	for _, t := range s.sources {
		rs, err := s.restores(ctx, t)
		if err != nil {
			return err
		}
		for _, r := range rs {
			if !r.DryRun && r.State == catalog.RestoreSucceeded {
				succeeded[r.TargetTenant] = true
			}
		}
	}
	for _, rt := range s.targets {
		if !succeeded[rt.target] {
			continue
		}
		d, err := digest(ctx, s.store, rt.target)
		if err != nil {
			return err
		}
		s.f.TargetsCompared++
		if d != s.digest[rt.source] {
			s.f.TargetsDiffering++
			s.note("restore target %s differs from %s", rt.target, rt.source)
		}
	}
	return nil
}

// countOrphans counts the blobs under backups/ whose backup has no row,
// and those left under failed backups, after the sweeps.
func (s *soak) countOrphans(ctx context.Context) error {
	rows := map[string]*catalog.Backup{}
	c := s.blobs.ServiceClient().NewContainerClient("backups")
	pager := c.NewListBlobsFlatPager(nil)
	seen := map[string]bool{}
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, it := range page.Segment.BlobItems {
			parts := strings.SplitN(*it.Name, "/", 3)
			if len(parts) < 3 {
				continue
			}
			key := parts[0] + "/" + parts[1]
			b, ok := rows[key]
			if !ok {
				b, err = s.cat.GetBackup(ctx, parts[0], parts[1])
				if errors.Is(err, catalog.ErrNotFound) {
					b, err = nil, nil
				}
				if err != nil {
					return err
				}
				rows[key] = b
			}
			switch {
			case b == nil:
				s.f.OrphanBlobs++
				if !seen[key] {
					seen[key] = true
					s.f.OrphanPrefixes++
				}
			case b.Status == catalog.StatusFailed:
				s.f.FailedRowBlobs++
			}
		}
	}
	return nil
}

func (s *soak) countPoison(ctx context.Context) error {
	for _, q := range []string{"backup-jobs-poison", "restore-jobs-poison"} {
		props, err := s.queues.NewQueueClient(q).GetProperties(ctx, nil)
		if err != nil {
			continue // never created: nothing was poisoned
		}
		if props.ApproximateMessagesCount != nil {
			s.f.Poisoned += int(*props.ApproximateMessagesCount)
		}
	}
	return nil
}

// backups lists every backup row of tenant.
func (s *soak) backups(ctx context.Context, tenant string) ([]*catalog.Backup, error) {
	var all []*catalog.Backup
	opts := catalog.ListOptions{MaxResults: catalog.MaxMaxResults}
	for {
		p, err := s.cat.ListBackups(ctx, tenant, opts)
		if err != nil {
			return nil, err
		}
		all = append(all, p.Backups...)
		if p.ContinuationToken == "" {
			return all, nil
		}
		opts.ContinuationToken = p.ContinuationToken
	}
}

// restores lists every restore row whose source is tenant.
func (s *soak) restores(ctx context.Context, tenant string) ([]*catalog.Restore, error) {
	var all []*catalog.Restore
	opts := catalog.ListOptions{MaxResults: catalog.MaxMaxResults}
	for {
		p, err := s.cat.ListRestores(ctx, tenant, opts)
		if err != nil {
			return nil, err
		}
		all = append(all, p.Restores...)
		if p.ContinuationToken == "" {
			return all, nil
		}
		opts.ContinuationToken = p.ContinuationToken
	}
}

func (s *soak) count(n *int) {
	s.mu.Lock()
	*n++
	s.mu.Unlock()
}

func (s *soak) note(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	const maxNotes = 20
	if len(s.f.Notes) < maxNotes {
		s.f.Notes = append(s.f.Notes, fmt.Sprintf(format, args...))
	}
}

// call sends one request to the (first) runner and decodes a 2xx JSON
// answer into v.
func (s *stack) call(ctx context.Context, method, path, token, body string, v any) (int, string, error) {
	return s.callAt(ctx, 0, method, path, token, body, v)
}

// callAt is call to instance i.
func (s *stack) callAt(ctx context.Context, i int, method, path, token, body string, v any) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+s.runs[i].Addr()+path, rd)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, "", err
	}
	if resp.StatusCode/100 == 2 && v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			return resp.StatusCode, string(b), err
		}
	}
	return resp.StatusCode, string(bytes.TrimSpace(b)), nil
}

// digest is a SHA-256 over a tenant's assets in the backup's own canonical
// encoding: every record with its properties' names, EDM types and values,
// then every file's path, properties, metadata and content.
func digest(ctx context.Context, store *assetsazure.Store, tenant string) (string, error) {
	h := sha256.New()
	enc := assets.NewEncoder(h)
	for r, err := range store.Records(ctx, tenant) {
		if err != nil {
			return "", err
		}
		if err := enc.WriteRecord(r); err != nil {
			return "", err
		}
	}
	for f, err := range store.Files(ctx, tenant) {
		if err != nil {
			return "", err
		}
		rc, err := store.OpenFile(ctx, tenant, f)
		if err != nil {
			return "", err
		}
		err = enc.WriteFile(f, rc)
		rc.Close()
		if err != nil {
			return "", err
		}
	}
	if err := enc.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func detail(d *errcode.Detail) string {
	if d == nil {
		return "no error recorded"
	}
	return string(d.Code) + ": " + d.Message
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
