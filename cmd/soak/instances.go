package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/devstack/seed"
	"github.com/twinit/byok-backup/internal/tenants"
)

// InstancesOptions configure [RunInstances].
type InstancesOptions struct {
	Tenants   int // tenants backed up per phase (each phase has its own)
	Restores  int // restores per phase: dry runs and replace restores, alternating
	Instances int // runners in the second phase (the first has one)
	Records   int // records per tenant
	Files     int // files per tenant
	FileSize  int64
	Phase     time.Duration // bound on one phase
	Parallel  int           // the driver's concurrent requests when seeding and checking
	// HandlerLog, Src and Log as in [Options].
	HandlerLog, Src string
	Log             *slog.Logger
}

func (o *InstancesOptions) defaults() {
	if o.Tenants <= 0 {
		o.Tenants = 300
	}
	if o.Restores < 0 {
		o.Restores = 0
	}
	if o.Restores > o.Tenants {
		o.Restores = o.Tenants
	}
	if o.Instances <= 0 {
		o.Instances = 3
	}
	if o.Phase <= 0 {
		o.Phase = 20 * time.Minute
	}
	if o.Parallel <= 0 {
		o.Parallel = 8
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// PhaseFigures is one phase: the same workload on Instances runners.
type PhaseFigures struct {
	Instances int
	// Duration runs from the first scheduler fire to the end of the
	// phase's last job, as the catalog rows record it.
	Duration                          time.Duration
	SchedulerRuns                     int // BackupScheduler fired, once per instance
	BackupsCompleted                  int // the slot's scheduled backups completed
	RestoresSucceeded, DryRunsSucceed int
	// JobsPerInstance counts the jobs each instance's handler logged
	// ending well ("backup completed", "restore succeeded") in this phase.
	JobsPerInstance []int

	NotOnce    int // tenants without exactly one backup row for the slot, completed (must be 0)
	Unfinished int // backup or restore rows of the phase not completed/succeeded (must be 0)
}

// InstancesFigures is what [RunInstances] measured.
type InstancesFigures struct {
	Tenants, Restores int
	// Phases: [0] one instance; [1] Instances, the scheduler fired once;
	// [2] Instances, fired from each of them for the same slot.
	Phases []PhaseFigures
	// Overlaps counts pairs of jobs holding one tenant's lease whose
	// [startedAt, completedAt] intervals overlap (must be 0). The lease
	// tenant is the backup's tenant or the restore's target.
	Overlaps          int
	JobsChecked       int // rows whose intervals were compared
	Contended         int // tenants with a backup and a dry run requested at once (more than two jobs)
	Poisoned          int // messages in the poison queues (must be 0)
	DuplicateBackups  int // a backup id logged completed twice (must be 0)
	DuplicateRestores int // a restore logged succeeded twice or restarted after (must be 0)
	Notes             []string
}

// Speedup is the one-instance phase's duration over the many-instance
// one's, the scheduler fired once in both.
func (f *InstancesFigures) Speedup() float64 {
	if len(f.Phases) < 2 || f.Phases[1].Duration <= 0 {
		return 0
	}
	return float64(f.Phases[0].Duration) / float64(f.Phases[1].Duration)
}

// Violations lists the broken invariants.
func (f *InstancesFigures) Violations() []string {
	var v []string
	add := func(name string, n int) {
		if n != 0 {
			v = append(v, fmt.Sprintf("%s: %d", name, n))
		}
	}
	for i, p := range f.Phases {
		k := fmt.Sprintf("phase %d (%d instances, %d fires): ", i+1, p.Instances, p.SchedulerRuns)
		add(k+"tenants not backed up exactly once for the slot", p.NotOnce)
		add(k+"jobs not completed (lost or failed)", p.Unfinished)
	}
	add("overlapping jobs of one tenant", f.Overlaps)
	add("poison messages", f.Poisoned)
	add("duplicate backups", f.DuplicateBackups)
	add("duplicate restores", f.DuplicateRestores)
	return v
}

// Print writes the figures as a table.
func (f *InstancesFigures) Print(w io.Writer) {
	row := func(k string, v any) { fmt.Fprintf(w, "| %-64s | %16v |\n", k, v) }
	fmt.Fprintf(w, "| %-64s | %16s |\n|%s|%s|\n", "figure", "value", strings.Repeat("-", 66), strings.Repeat("-", 18))
	row("tenants / restores per phase", fmt.Sprintf("%d / %d", f.Tenants, f.Restores))
	for _, p := range f.Phases {
		k := fmt.Sprintf("%d instance(s), %d fire(s): ", p.Instances, p.SchedulerRuns)
		row(k+"time, fire to last job's end", p.Duration.Round(10*time.Millisecond))
		row(k+"slot backups completed", p.BackupsCompleted)
		row(k+"replace restores / dry runs succeeded", fmt.Sprintf("%d / %d", p.RestoresSucceeded, p.DryRunsSucceed))
		row(k+"jobs ended per instance", fmt.Sprint(p.JobsPerInstance))
		row(k+"tenants not backed up once (must be 0)", p.NotOnce)
		row(k+"jobs not completed (must be 0)", p.Unfinished)
	}
	row("speedup (1 instance's time / many's, one fire each)", fmt.Sprintf("%.2f×", f.Speedup()))
	row("jobs compared / tenants with concurrent requests", fmt.Sprintf("%d / %d", f.JobsChecked, f.Contended))
	row("overlapping jobs of one tenant (must be 0)", f.Overlaps)
	row("poison messages (must be 0)", f.Poisoned)
	row("duplicate backups / restores (must be 0)", fmt.Sprintf("%d / %d", f.DuplicateBackups, f.DuplicateRestores))
	for _, n := range f.Notes {
		fmt.Fprintln(w, "note:", n)
	}
}

// instances is one run of [RunInstances].
type instances struct {
	*stack
	io   InstancesOptions
	f    InstancesFigures
	mu   sync.Mutex
	set  [][]string        // per phase: its tenants; the first Restores of them are restored
	prep map[string]string // restore source -> its on-demand backup made before the phases
}

// RunInstances runs the same workload (a scheduler slot's backups of
// o.Tenants tenants and o.Restores restores) three times in one stack: on
// one runner, then on o.Instances runners sharing Azurite, its queues and
// tables, with BackupScheduler fired once, then fired from every instance
// for the same slot. It checks that every tenant is backed up exactly once for the slot, that
// no two jobs of a tenant ran at once, and that no message was lost.
func RunInstances(ctx context.Context, o InstancesOptions) (*InstancesFigures, error) {
	o.defaults()
	// Every timer daily, an hour ago: none fires by itself during a run,
	// and the slot (the occurrence at or before now) is the same for every
	// fire, from every instance, for a day.
	ago := time.Now().UTC().Add(-time.Hour)
	daily := fmt.Sprintf("0 %d %d * * *", ago.Minute(), ago.Hour())
	st, err := start(ctx, Options{Instances: 1, SweepGrace: time.Hour, HandlerLog: o.HandlerLog, Src: o.Src, Log: o.Log,
		Settings: map[string]string{"BACKUP_SCHEDULE": daily, "BYOK_MONITOR_SCHEDULE": daily, "RETENTION_SCHEDULE": daily}})
	if err != nil {
		return nil, fmt.Errorf("start the stack: %w", err)
	}
	defer st.close()
	s := &instances{stack: st, io: o, prep: map[string]string{}}
	s.f.Tenants, s.f.Restores = o.Tenants, o.Restores
	if err := s.seed(ctx); err != nil {
		return &s.f, fmt.Errorf("seed: %w", err)
	}
	if err := s.prepare(ctx); err != nil {
		return &s.f, fmt.Errorf("backups to restore: %w", err)
	}
	// The same workload three times: on one instance, on o.Instances with
	// the scheduler fired once (the time to compare), and on o.Instances
	// with it fired from every instance for the same slot (the idempotency
	// check: each fire enqueues every still-queued tenant again).
	for p, ph := range []struct {
		n       int
		fireAll bool
	}{{1, false}, {o.Instances, false}, {o.Instances, true}} {
		n := ph.n
		if p > 0 {
			// The next phase's tenants are the scheduled ones now.
			if err := s.each(ctx, s.set[p-1], func(ctx context.Context, t string) error {
				return s.tenants.Put(ctx, tenants.Tenant{ID: t, BackupEnabled: false})
			}); err != nil {
				return &s.f, err
			}
			if err := s.each(ctx, s.set[p], func(ctx context.Context, t string) error {
				return s.tenants.Put(ctx, tenants.Tenant{ID: t, BackupEnabled: true})
			}); err != nil {
				return &s.f, err
			}
		}
		for len(s.runs) < n {
			if err := s.addInstance(ctx); err != nil {
				return &s.f, fmt.Errorf("start instance %d: %w", len(s.runs)+1, err)
			}
		}
		for i := range s.runs {
			if err := s.instanceUp(ctx, i); err != nil {
				return &s.f, err
			}
		}
		pf, err := s.phase(ctx, p, ph.fireAll)
		s.f.Phases = append(s.f.Phases, pf)
		if err != nil {
			return &s.f, err
		}
	}
	if err := s.checkOverlaps(ctx); err != nil {
		return &s.f, err
	}
	s.f.DuplicateBackups, s.f.DuplicateRestores = s.events.duplicates()
	var probe soak
	probe.stack = s.stack
	if err := probe.countPoison(ctx); err != nil {
		return &s.f, err
	}
	s.f.Poisoned = probe.f.Poisoned
	return &s.f, nil
}

// seed writes every tenant's assets and Tenants row (the first phase's
// enabled), and the replace restores' sandbox targets.
func (s *instances) seed(ctx context.Context) error {
	s.set = make([][]string, 3)
	var all []string
	for p := range s.set {
		for i := range s.io.Tenants {
			s.set[p] = append(s.set[p], fmt.Sprintf("inst%d-%d", p, i))
		}
		all = append(all, s.set[p]...)
	}
	err := s.each(ctx, all, func(ctx context.Context, t string) error {
		if _, err := seed.Tenant(ctx, s.store, t, seed.Options{Records: s.io.Records, Files: s.io.Files, FileSize: s.io.FileSize, Seed: 1}); err != nil {
			return err
		}
		return s.tenants.Put(ctx, tenants.Tenant{ID: t, BackupEnabled: strings.HasPrefix(t, "inst0-")})
	})
	if err != nil {
		return err
	}
	var targets []string
	for p := range s.set {
		for i := 1; i < s.io.Restores; i += 2 {
			targets = append(targets, target(s.set[p][i]))
		}
	}
	return s.each(ctx, targets, func(ctx context.Context, t string) error {
		_, err := seed.Tenant(ctx, s.store, t, seed.Options{Records: 3, Files: 1, FileSize: 1 << 10, Seed: 1 << 40})
		return err
	})
}

// target is the sandbox a replace restore of tenant's backup writes to.
func target(tenant string) string { return tenant + "-r" }

// prepare gives every restore source an on-demand backup before the
// phases, so each phase's restores are requested together with the
// scheduler's backups and a dry run competes with its tenant's backup.
func (s *instances) prepare(ctx context.Context) error {
	var sources []string
	for p := range s.set {
		sources = append(sources, s.set[p][:s.io.Restores]...)
	}
	err := s.each(ctx, sources, func(ctx context.Context, t string) error {
		var b struct {
			BackupID string `json:"backupId"`
		}
		if err := s.post(ctx, 0, "/api/tenants/"+t+"/backups", t, "", &b); err != nil {
			return err
		}
		s.mu.Lock()
		s.prep[t] = b.BackupID
		s.mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(s.io.Phase)
	for _, t := range sources {
		for {
			b, err := s.cat.GetBackup(ctx, t, s.prep[t])
			if err != nil {
				return err
			}
			if b.Status == catalog.StatusCompleted {
				break
			}
			if b.Status == catalog.StatusFailed || time.Now().After(deadline) {
				return fmt.Errorf("the backup of %s to restore ended %s", t, b.Status)
			}
			if err := sleep(ctx, 200*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}

// phase fires BackupScheduler from the first instance (fireAll: from
// every one, for the same slot) and requests
// the phase's restores at once (spread over the instances), then waits
// until every job of the phase has ended and checks the rows.
func (s *instances) phase(ctx context.Context, p int, fireAll bool) (PhaseFigures, error) {
	n := len(s.runs)
	fire := 1
	if fireAll {
		fire = n
	}
	pf := PhaseFigures{Instances: n}
	before := make([]int, n)
	for i, e := range s.runLogs {
		before[i] = e.count("backup completed") + e.count("restore succeeded")
	}
	fired := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, n+s.io.Restores)
	for i := range fire {
		wg.Go(func() {
			errs[i] = s.fireAt(ctx, i, "BackupScheduler")
		})
	}
	pf.SchedulerRuns = fire
	restoreIDs := make([]string, s.io.Restores)
	for i, t := range s.set[p][:s.io.Restores] {
		wg.Go(func() {
			body := fmt.Sprintf(`{"backupId":%q,"dryRun":true}`, s.prep[t])
			if i%2 == 1 {
				body = fmt.Sprintf(`{"backupId":%q,"targetTenant":%q,"mode":"replace"}`, s.prep[t], target(t))
			}
			var r struct {
				RestoreID string `json:"restoreId"`
			}
			errs[n+i] = s.post(ctx, i%n, "/api/tenants/"+t+"/restores", t, body, &r)
			restoreIDs[i] = r.RestoreID
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return pf, err
	}

	// Wait until the handlers' logs say every job ended well, or the
	// phase's bound; the catalog decides either way.
	deadline := fired.Add(s.io.Phase)
	for time.Now().Before(deadline) {
		done := 0
		for i, e := range s.runLogs {
			done += e.count("backup completed") + e.count("restore succeeded")
			if i < len(before) {
				done -= before[i]
			}
		}
		if done >= s.io.Tenants+s.io.Restores {
			break
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return pf, err
		}
	}
	for i, e := range s.runLogs {
		pf.JobsPerInstance = append(pf.JobsPerInstance, e.count("backup completed")+e.count("restore succeeded")-before[i])
	}

	var last time.Time
	err := s.each(ctx, s.set[p], func(ctx context.Context, t string) error {
		bs, err := (&soak{stack: s.stack}).backups(ctx, t)
		if err != nil {
			return err
		}
		slot := 0
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, b := range bs {
			if b.Reason != catalog.ReasonSchedule {
				continue
			}
			slot++
			if b.Status != catalog.StatusCompleted {
				pf.Unfinished++
				s.note("%d instance(s): backup %s/%s %s", n, t, b.BackupID, b.Status)
				continue
			}
			pf.BackupsCompleted++
			if b.CompletedAt.After(last) {
				last = b.CompletedAt
			}
		}
		if slot != 1 {
			pf.NotOnce++
			s.note("%d instance(s): tenant %s has %d scheduled backups", n, t, slot)
		}
		return nil
	})
	if err != nil {
		return pf, err
	}
	for i, t := range s.set[p][:s.io.Restores] {
		r, err := s.cat.GetRestore(ctx, t, restoreIDs[i])
		if err != nil {
			return pf, err
		}
		switch {
		case r.State != catalog.RestoreSucceeded:
			pf.Unfinished++
			s.note("%d instance(s): restore %s/%s %s: %s", n, t, r.RestoreID, r.State, detail(r.Error))
		case r.DryRun:
			pf.DryRunsSucceed++
		default:
			pf.RestoresSucceeded++
		}
		if r.CompletedAt.After(last) {
			last = r.CompletedAt
		}
	}
	pf.Duration = last.Sub(fired)
	return pf, nil
}

// checkOverlaps compares the [startedAt, completedAt] intervals of every
// job row (both phases and the preparation) per lease tenant: the
// backup's tenant, a restore's target.
func (s *instances) checkOverlaps(ctx context.Context) error {
	var mu sync.Mutex
	byTenant := map[string][]span{}
	var all []string
	for _, set := range s.set {
		all = append(all, set...)
	}
	sk := &soak{stack: s.stack}
	err := s.each(ctx, all, func(ctx context.Context, t string) error {
		bs, err := sk.backups(ctx, t)
		if err != nil {
			return err
		}
		rs, err := sk.restores(ctx, t)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, b := range bs {
			byTenant[t] = append(byTenant[t], span{"backup " + b.BackupID, b.StartedAt, b.CompletedAt})
		}
		for _, r := range rs {
			byTenant[r.TargetTenant] = append(byTenant[r.TargetTenant], span{"restore " + r.RestoreID, r.StartedAt, r.CompletedAt})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for t, spans := range byTenant {
		s.f.JobsChecked += len(spans)
		if len(spans) > 2 { // the preparation's backup, then a phase's backup and restore
			s.f.Contended++
		}
		for _, o := range overlapping(spans) {
			s.f.Overlaps++
			s.note("tenant %s: %s (%s–%s) and %s (from %s) overlap", t, o[0].what,
				o[0].start.Format(time.StampMilli), o[0].end.Format(time.StampMilli), o[1].what, o[1].start.Format(time.StampMilli))
		}
	}
	return nil
}

// span is when one job held its tenant's lease, as its row says: from
// startedAt to completedAt (zero while it runs).
type span struct {
	what       string
	start, end time.Time
}

// overlapping returns the pairs of spans, in start order, where the
// later one started before the earlier one ended (or while it still
// runs). Rows that never started held no lease and are left out.
func overlapping(spans []span) [][2]span {
	spans = slices.DeleteFunc(slices.Clone(spans), func(sp span) bool { return sp.start.IsZero() })
	slices.SortFunc(spans, func(a, b span) int { return a.start.Compare(b.start) })
	var out [][2]span
	for i := 1; i < len(spans); i++ {
		// Against every earlier span still open, not only the previous:
		// a long job may cover several short ones.
		for j := range i {
			if prev := spans[j]; prev.end.IsZero() || spans[i].start.Before(prev.end) {
				out = append(out, [2]span{prev, spans[i]})
			}
		}
	}
	return out
}

// instanceUp waits until instance i's handler answers through its runner.
func (s *instances) instanceUp(ctx context.Context, i int) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		if s.runs[i].HandlerPID() != 0 {
			if code, _, err := s.callAt(ctx, i, http.MethodGet, "/api/health", "", "", nil); err == nil && code == http.StatusOK {
				return nil
			}
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("instance %d did not answer: %w", i+1, err)
		}
	}
}

// fireAt runs a timer function on instance i.
func (s *instances) fireAt(ctx context.Context, i int, fn string) error {
	code, body, err := s.callAt(ctx, i, http.MethodPost, "/admin/functions/"+fn, "", `{"input":""}`, nil)
	if err != nil || code != http.StatusAccepted {
		return fmt.Errorf("fire %s on instance %d: %d %s %v", fn, i+1, code, body, err)
	}
	return nil
}

// post sends an API request as an operator of tenant to instance i.
func (s *instances) post(ctx context.Context, i int, path, tenant, body string, v any) error {
	token, err := s.issuer.Token(tenant, "backup.operator", "platform.operator")
	if err != nil {
		return err
	}
	code, b, err := s.callAt(ctx, i, http.MethodPost, path, token, body, v)
	if err != nil || code != http.StatusAccepted {
		return fmt.Errorf("POST %s on instance %d: %d %s %v", path, i+1, code, b, err)
	}
	return nil
}

// each runs fn for every tenant, o.Parallel at a time; the first error wins.
func (s *instances) each(ctx context.Context, ts []string, fn func(context.Context, string) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan string)
	var wg sync.WaitGroup
	for range s.io.Parallel {
		wg.Go(func() {
			for t := range work {
				if err := fn(ctx, t); err != nil {
					cancel(fmt.Errorf("tenant %s: %w", t, err))
				}
			}
		})
	}
	for _, t := range ts {
		if ctx.Err() != nil {
			break
		}
		work <- t
	}
	close(work)
	wg.Wait()
	return context.Cause(ctx)
}

func (s *instances) note(format string, args ...any) {
	const maxNotes = 20
	if len(s.f.Notes) < maxNotes {
		s.f.Notes = append(s.f.Notes, fmt.Sprintf(format, args...))
	}
}
