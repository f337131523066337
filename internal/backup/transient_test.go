package backup_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/backup"
	"github.com/twinit/byok-backup/internal/byok"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/devstack/kvemu"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/jobqueue"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// testGrace is BYOK_TRANSIENT_GRACE in these tests; it is measured on the
// env's clock, which the tests move, so nothing waits for it. The retry
// delay is real: Azurite hides the delayed message for it.
const (
	testGrace      = 10 * time.Minute
	testRetryDelay = time.Second
)

func transientOpts(o *backup.Options) {
	o.TransientGrace = testGrace
	o.TransientRetryDelay = testRetryDelay
}

// transientFaults are the transient causes of API.md §5, each made by the
// emulator's fault injection, and the code each is reported with.
var transientFaults = []struct {
	name  string
	fault kvemu.Fault
	code  errcode.Code
}{
	{"throttled-429", kvemu.Fault{Throttle: -1}, errcode.Throttled},
	{"unavailable-503", kvemu.Fault{ServerError: -1, ServerCode: http.StatusServiceUnavailable}, errcode.KeyVaultUnreachable},
	{"vault-down", kvemu.Fault{Down: true}, errcode.KeyVaultUnreachable},
}

// nextJob waits (real time, bounded) for the delayed retry message the
// worker enqueued and returns it; exactly one must come.
func (e *env) nextJob() jobqueue.BackupJob {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		jobs := e.received()
		if len(jobs) > 1 {
			e.t.Fatalf("%d retry messages, want 1: %+v", len(jobs), jobs)
		}
		if len(jobs) == 1 {
			return jobs[0]
		}
		if time.Now().After(deadline) {
			e.t.Fatal("no delayed retry message was enqueued")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// custRequests counts requests the customer vault received (failed ones
// included).
func (e *env) custRequests() int {
	n := 0
	for _, r := range e.emu.Requests() {
		if strings.EqualFold(r.Vault, custVault) {
			n++
		}
	}
	return n
}

// checkWaiting checks a backup that waits out a transient key failure: the
// row is queued with lastError naming the transient code, nothing was
// wrapped with the platform key, the tenant's BYOK state is still active,
// and the API shows lastError.
func (e *env) checkWaiting(id string, code errcode.Code) *catalog.Backup {
	e.t.Helper()
	b := e.row(testTenant, id)
	if b.Status != catalog.StatusQueued || b.LastError == nil || b.LastError.Code != code || b.KeySource != "" ||
		b.FallbackReason != nil || b.Error != nil || b.RetryAt.IsZero() || b.FirstAttemptAt.IsZero() {
		e.t.Fatalf("waiting row = %+v (lastError %+v)", b, b.LastError)
	}
	if m := b.LastError.Message; !strings.Contains(m, "retry") || strings.Contains(m, "RESPONSE") || strings.Contains(m, "VaultRequestTypeLimitReached") {
		e.t.Errorf("lastError message %q", m)
	}
	if n := e.emu.CountOps(platVault, "wrapKey"); n != 0 {
		e.t.Errorf("platform key used %d times within the grace", n)
	}
	if st, err := e.byok.Status(e.t.Context(), testTenant); err != nil || st.State != byok.Active {
		e.t.Errorf("byok status = %+v, %v; want active within the grace", st, err)
	}
	tok, err := e.issuer.Token(testTenant, "byok.read")
	must(e.t, err)
	rec := e.http(http.MethodGet, "/api/tenants/"+testTenant+"/backups/"+id, tok, "")
	var body struct {
		Status    string
		LastError *errcode.Detail
	}
	must(e.t, json.Unmarshal(rec.Body.Bytes(), &body))
	if rec.Code != 200 || body.Status != "queued" || body.LastError == nil || body.LastError.Code != code {
		e.t.Errorf("GET = %d %s", rec.Code, rec.Body)
	}
	return b
}

// (a) A transient Key Vault failure shorter than the grace does not move
// the backup to the platform key: the backup is requeued with a delayed
// message (acknowledging the delivery), waits queued saying why, retries,
// and once the vault recovers completes with the customer key.
func TestTransientKeyFailureRetriedThenCustomerKey(t *testing.T) {
	for _, c := range transientFaults {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, transientOpts)
			e.seed(testTenant, 6, 2)
			e.enableBYOK(testTenant, true)
			e.emu.SetFault(custVault, c.fault)
			job := e.request(testTenant)
			e.received() // the request's own message

			if rec := e.deliver(t.Context(), e.handler, job, 1); rec.Code != 200 {
				t.Fatalf("worker = %d %s (the delivery must be acknowledged: a delayed message retries)", rec.Code, rec.Body)
			}
			first := e.checkWaiting(job.BackupID, c.code)
			retry := e.nextJob()
			if retry != job {
				t.Fatalf("retry message %+v, want %+v", retry, job)
			}

			// Still failing a few minutes later: waits again.
			e.clock.Advance(testGrace / 2)
			if rec := e.deliver(t.Context(), e.handler, retry, 1); rec.Code != 200 {
				t.Fatalf("second worker = %d %s", rec.Code, rec.Body)
			}
			second := e.checkWaiting(job.BackupID, c.code)
			if !second.FirstAttemptAt.Equal(first.FirstAttemptAt) || second.Attempts != 2 {
				t.Errorf("first attempt %v then %v, attempts %d", first.FirstAttemptAt, second.FirstAttemptAt, second.Attempts)
			}
			retry = e.nextJob()

			e.emu.SetFault(custVault, kvemu.Fault{})
			if rec := e.deliver(t.Context(), e.handler, retry, 1); rec.Code != 200 {
				t.Fatalf("third worker = %d %s", rec.Code, rec.Body)
			}
			b := e.row(testTenant, job.BackupID)
			if b.Status != catalog.StatusCompleted || b.KeySource != keywrap.Customer || b.FallbackReason != nil ||
				b.LastError != nil || b.Error != nil {
				t.Fatalf("row = %+v", b)
			}
			e.checkMatchesSource(testTenant, e.verifyBackup(b))
			if n := e.emu.CountOps(platVault, "wrapKey"); n != 0 {
				t.Errorf("platform wrapKey calls = %d, want 0", n)
			}
			if st, _ := e.byok.Status(t.Context(), testTenant); st.State != byok.Active {
				t.Errorf("byok state = %s, want active", st.State)
			}
			if got := e.received(); len(got) != 0 {
				t.Errorf("messages left after completion: %+v", got)
			}
			if w := e.logs.Records("customer key failed transiently: the backup waits and retries"); len(w) != 2 || w[0]["code"] != string(c.code) {
				t.Errorf("transient warnings = %v", w)
			}
		})
	}
}

// (b) A transient failure that outlasts the grace (since the backup's first
// attempt) falls back like a refusal: platform key, fallbackReason with the
// transient code, BYOK degraded; a strict tenant's backup fails with
// CustomerKeyUnavailable naming the code.
func TestTransientKeyFailureAfterGraceFallsBack(t *testing.T) {
	for _, c := range transientFaults[:2] {
		for _, fallback := range []bool{true, false} {
			name := c.name + "/fallback"
			if !fallback {
				name = c.name + "/strict"
			}
			t.Run(name, func(t *testing.T) {
				e := newEnv(t, transientOpts)
				e.seed(testTenant, 6, 2)
				e.enableBYOK(testTenant, fallback)
				e.emu.SetFault(custVault, c.fault)
				job := e.request(testTenant)
				e.received() // the request's own message
				if rec := e.deliver(t.Context(), e.handler, job, 1); rec.Code != 200 {
					t.Fatalf("worker = %d %s", rec.Code, rec.Body)
				}
				e.checkWaiting(job.BackupID, c.code)
				retry := e.nextJob()

				e.clock.Advance(testGrace)
				if rec := e.deliver(t.Context(), e.handler, retry, 1); rec.Code != 200 {
					t.Fatalf("worker after the grace = %d %s", rec.Code, rec.Body)
				}
				b := e.row(testTenant, job.BackupID)
				if fallback {
					if b.Status != catalog.StatusCompleted || b.KeySource != keywrap.Platform || b.FallbackReason == nil ||
						b.FallbackReason.Code != c.code || b.LastError != nil {
						t.Fatalf("row = %+v (fallbackReason %+v)", b, b.FallbackReason)
					}
					e.checkMatchesSource(testTenant, e.verifyBackup(b))
				} else {
					if b.Status != catalog.StatusFailed || b.Error == nil || b.Error.Code != errcode.CustomerKeyUnavailable ||
						!strings.Contains(b.Error.Message, string(c.code)) || b.LastError != nil {
						t.Fatalf("row = %+v (error %+v)", b, b.Error)
					}
					if n := e.emu.CountOps(platVault, "wrapKey"); n != 0 {
						t.Errorf("strict tenant's backup used the platform key %d times", n)
					}
				}
				st, err := e.byok.Status(t.Context(), testTenant)
				must(t, err)
				// byok reports Throttled as KeyValidationFailed (its own
				// mapping, message naming the throttling).
				if st.State != byok.Degraded || st.LastCheck == nil || st.LastCheck.OK ||
					c.code == errcode.KeyVaultUnreachable && st.LastCheck.Code != string(c.code) {
					t.Errorf("byok status = %+v (last check %+v), want degraded by %s", st, st.LastCheck, c.code)
				}
				if got := e.received(); len(got) != 0 {
					t.Errorf("messages left: %+v", got)
				}
			})
		}
	}
}

// (c) A definitive refusal still falls back at once, within the grace and
// on the first delivery, without any retry message.
func TestDefinitiveRefusalFallsBackAtOnce(t *testing.T) {
	cases := []struct {
		name   string
		break_ func(e *env)
		code   errcode.Code
	}{
		{"deleted-key", func(e *env) { must(e.t, e.emu.DeleteKey(custVault, "k")) }, errcode.KeyNotFound},
		{"disabled-key", func(e *env) { must(e.t, e.emu.SetEnabled(custVault, "k", "", false)) }, errcode.KeyDisabled},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, transientOpts)
			e.seed(testTenant, 4, 1)
			e.enableBYOK(testTenant, true)
			c.break_(e)
			job := e.request(testTenant)
			e.received() // the request's own message
			if rec := e.deliver(t.Context(), e.handler, job, 1); rec.Code != 200 {
				t.Fatalf("worker = %d %s", rec.Code, rec.Body)
			}
			b := e.row(testTenant, job.BackupID)
			if b.Status != catalog.StatusCompleted || b.KeySource != keywrap.Platform || b.FallbackReason == nil ||
				b.FallbackReason.Code != c.code || b.LastError != nil {
				t.Fatalf("row = %+v", b)
			}
			if r := e.logs.Records("backup requeued to wait out a transient customer key failure"); len(r) != 0 {
				t.Errorf("a definitive refusal was requeued: %v", r)
			}
		})
	}
}

// (d) Redelivery is harmless: the delivery that requeued the backup,
// delivered again before the retry is due (its acknowledgement was lost),
// is acknowledged without touching the vault or enqueueing another retry;
// a delivery once the backup completed does nothing either.
func TestTransientWaitRedeliveryHarmless(t *testing.T) {
	e := newEnv(t, func(o *backup.Options) {
		o.TransientGrace = testGrace
		// Long enough that the redelivery below is early by any clock.
		o.TransientRetryDelay = 20 * time.Second
	})
	e.seed(testTenant, 4, 1)
	e.enableBYOK(testTenant, true)
	e.emu.SetFault(custVault, kvemu.Fault{Throttle: -1})
	job := e.request(testTenant)
	e.received() // the request's own message
	if rec := e.deliver(t.Context(), e.handler, job, 1); rec.Code != 200 {
		t.Fatalf("worker = %d %s", rec.Code, rec.Body)
	}
	before := e.checkWaiting(job.BackupID, errcode.Throttled)
	calls := e.custRequests()

	for dq := 2; dq <= 5; dq++ {
		if rec := e.deliver(t.Context(), e.handler, job, dq); rec.Code != 200 {
			t.Fatalf("redelivery %d = %d %s", dq, rec.Code, rec.Body)
		}
	}
	after := e.row(testTenant, job.BackupID)
	if after.ETag != before.ETag || after.Attempts != before.Attempts {
		t.Errorf("early redeliveries changed the row: %+v", after)
	}
	if n := e.custRequests(); n != calls {
		t.Errorf("early redeliveries made %d vault requests", n-calls)
	}
	if got := e.received(); len(got) != 0 {
		t.Errorf("early redeliveries enqueued %d messages (the delayed retry is still hidden)", len(got))
	}

	// The retry is due: it runs, the vault has recovered.
	e.emu.SetFault(custVault, kvemu.Fault{})
	e.clock.Advance(20 * time.Second)
	if rec := e.deliver(t.Context(), e.handler, job, 1); rec.Code != 200 {
		t.Fatalf("due retry = %d %s", rec.Code, rec.Body)
	}
	done := e.row(testTenant, job.BackupID)
	if done.Status != catalog.StatusCompleted || done.KeySource != keywrap.Customer {
		t.Fatalf("row = %+v", done)
	}
	// The delayed message, arriving after completion, is acknowledged and
	// changes nothing.
	if rec := e.deliver(t.Context(), e.handler, job, 1); rec.Code != 200 {
		t.Fatalf("late delivery = %d %s", rec.Code, rec.Body)
	}
	if b := e.row(testTenant, job.BackupID); b.ETag != done.ETag {
		t.Errorf("late delivery changed the completed row")
	}
}

// plainQueue can't delay messages (no EnqueueAfter).
type plainQueue struct{ q backup.Queue }

func (p plainQueue) Enqueue(ctx context.Context, queue string, msg any) error {
	return p.q.Enqueue(ctx, queue, msg)
}

// With a Queue that can't delay a message, a transient failure within the
// grace still doesn't fall back: the delivery fails so the host redelivers
// it, and the row is released for that retry.
func TestTransientWithoutDelayedQueueUsesRedelivery(t *testing.T) {
	e := newEnv(t, transientOpts, func(o *backup.Options) { o.Queue = plainQueue{o.Queue} })
	e.seed(testTenant, 4, 1)
	e.enableBYOK(testTenant, true)
	e.emu.SetFault(custVault, kvemu.Fault{Throttle: -1})
	job := e.request(testTenant)
	if rec := e.deliver(t.Context(), e.handler, job, 1); rec.Code == 200 {
		t.Fatalf("worker = 200 %s: the delivery must fail so the host redelivers it", rec.Body)
	}
	b := e.row(testTenant, job.BackupID)
	if b.Status != catalog.StatusRunning || !b.HeartbeatAt.IsZero() || b.KeySource != "" {
		t.Fatalf("row = %+v", b)
	}
	if n := e.emu.CountOps(platVault, "wrapKey"); n != 0 {
		t.Errorf("platform key used %d times within the grace", n)
	}
	e.emu.SetFault(custVault, kvemu.Fault{})
	if rec := e.deliver(t.Context(), e.handler, job, 2); rec.Code != 200 {
		t.Fatalf("redelivery = %d %s", rec.Code, rec.Body)
	}
	if b := e.row(testTenant, job.BackupID); b.Status != catalog.StatusCompleted || b.KeySource != keywrap.Customer {
		t.Fatalf("row = %+v", b)
	}
}
