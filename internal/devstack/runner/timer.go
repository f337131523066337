package runner

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/twinit/byok-backup/internal/devstack/runner/approot"
)

// ncrontab parses the host's six-field NCRONTAB ({second} {minute} {hour}
// {day} {month} {day-of-week}); five-field expressions get second 0.
var ncrontab = cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// ParseSchedule parses a timer schedule: NCRONTAB with seconds, or a
// TimeSpan ("hh:mm:ss") meaning a fixed interval.
func ParseSchedule(spec string) (cron.Schedule, error) {
	spec = strings.TrimSpace(spec)
	if strings.Contains(spec, ":") {
		d, err := approot.ParseTimeSpan(spec)
		if err != nil || d < time.Second {
			return nil, fmt.Errorf("timer schedule %q is neither NCRONTAB nor a TimeSpan of at least 1s", spec)
		}
		return cron.Every(d), nil
	}
	if len(strings.Fields(spec)) == 5 {
		spec = "0 " + spec
	}
	s, err := ncrontab.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("timer schedule %q is not a valid NCRONTAB expression ({second} {minute} {hour} {day} {month} {day-of-week}): %w", spec, err)
	}
	return s, nil
}

// timer is one timer-triggered function with its in-memory schedule monitor.
type timer struct {
	fn       approot.Function
	binding  approot.Binding
	schedule cron.Schedule
	monitor  bool // ScheduleStatus is sent only with useMonitor and a schedule of a minute or more

	mu   sync.Mutex
	last time.Time // previous occurrence; zero before the first
}

func newTimer(fn approot.Function, b approot.Binding, settings map[string]string) (*timer, error) {
	spec, err := resolve(b.Schedule, settings)
	if err != nil {
		return nil, fmt.Errorf("function %s: %w", fn.Name, err)
	}
	s, err := ParseSchedule(spec)
	if err != nil {
		return nil, fmt.Errorf("function %s: %w", fn.Name, err)
	}
	t := &timer{fn: fn, binding: b, schedule: s, monitor: b.UseMonitor == nil || *b.UseMonitor}
	// The host turns the monitor off for schedules firing more than once a minute.
	n1 := s.Next(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	if s.Next(n1).Sub(n1) < time.Minute {
		t.monitor = false
	}
	return t, nil
}

// payload builds the invocation for the occurrence due at `due`
// (docs/research/functions-custom-handler.md §3.3).
func (t *timer) payload(due, now time.Time) payload {
	t.mu.Lock()
	last := t.last
	t.last = due
	t.mu.Unlock()
	var status any
	if t.monitor {
		status = map[string]string{
			"Last":        last.UTC().Format(netTime),
			"Next":        due.UTC().Format(netTime),
			"LastUpdated": last.UTC().Format(netTime),
		}
	}
	return payload{
		Data: map[string]any{t.binding.Name: map[string]any{
			"Schedule":       map[string]bool{"AdjustForDST": true},
			"ScheduleStatus": status,
			"IsPastDue":      false,
		}},
		Metadata: map[string]any{"sys": sysMetadata(t.fn.Name, now)},
	}
}

// cronJob adapts a timer to robfig/cron, which calls Run at each occurrence.
type cronJob struct {
	r *Runner
	t *timer
}

func (j cronJob) Run() {
	if !j.r.track() {
		return
	}
	defer j.r.inflight.Done()
	// cron calls Run at the occurrence; truncate to the second it was due.
	j.r.fireTimer(j.r.baseCtx, j.t, time.Now().UTC().Truncate(time.Second), "schedule")
}

// fireTimer invokes a timer function; the caller tracks it (see [Runner.track]).
func (r *Runner) fireTimer(ctx context.Context, t *timer, due time.Time, why string) {
	// A timer failure is only logged; the next occurrence follows the schedule (§4.5).
	_, _ = r.invoke(ctx, t.fn, "timer:"+why, t.payload(due, time.Now()))
}

// startTimers schedules every timer and fires runOnStartup ones once.
func (r *Runner) startTimers() {
	r.cron = cron.New(cron.WithLocation(time.UTC))
	for _, t := range r.timers {
		r.cron.Schedule(t.schedule, cronJob{r: r, t: t})
		if t.binding.RunOnStart && r.track() {
			go func() {
				defer r.inflight.Done()
				r.fireTimer(r.baseCtx, t, time.Now().UTC().Truncate(time.Second), "startup")
			}()
		}
	}
	r.cron.Start()
}
