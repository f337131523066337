package backup_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"iter"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/twinit/byok-backup/internal/backup"
	blobmem "github.com/twinit/byok-backup/internal/blobstore/mem"
	catmem "github.com/twinit/byok-backup/internal/catalog/mem"
	"github.com/twinit/byok-backup/internal/jobqueue"
	"github.com/twinit/byok-backup/internal/keywrap"
	"github.com/twinit/byok-backup/internal/tenants"
)

// One scheduler run over 300 tenants in Azurite gives every tenant exactly
// one catalog row and exactly one queue message: none skipped, none
// doubled by the parallel fan-out.
func TestSchedulerEveryTenantOnce(t *testing.T) {
	const n = 300
	e := newScaleEnv(t, n, 0, nil)
	if err := e.svc.RunScheduler(t.Context(), time.Now()); err != nil {
		t.Fatal(err)
	}
	rows := e.rows(t)
	msgs := map[string]int{}
	qc := e.qsvc.NewQueueClient(e.queueName)
	for {
		k := int32(32)
		resp, err := qc.DequeueMessages(t.Context(), &azqueue.DequeueMessagesOptions{NumberOfMessages: &k})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Messages) == 0 {
			break
		}
		for _, m := range resp.Messages {
			text, err := base64.StdEncoding.DecodeString(*m.MessageText)
			if err != nil {
				t.Fatal(err)
			}
			job, err := jobqueue.DecodeBackupJob(text)
			if err != nil {
				t.Fatal(err)
			}
			msgs[job.Tenant]++
			// Deleted, so no message comes round twice however long this takes.
			if _, err := qc.DeleteMessage(t.Context(), *m.MessageID, *m.PopReceipt, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range n {
		tenant := fmt.Sprintf("t%05d", i)
		if rows[tenant] != 1 || msgs[tenant] != 1 {
			t.Errorf("tenant %s: %d rows, %d messages; want 1 and 1", tenant, rows[tenant], msgs[tenant])
		}
	}
	if len(rows) != n || len(msgs) != n {
		t.Errorf("rows for %d tenants, messages for %d; want %d", len(rows), len(msgs), n)
	}
}

// The fan-out keeps ScheduleParallelism tenants in flight, never more.
func TestSchedulerParallelism(t *testing.T) {
	const parallelism, n = 4, 40
	q := &gateQueue{want: parallelism, released: make(chan struct{})}
	svc, err := backup.New(backup.Options{
		Source: unused{}, Wrapper: unused{}, Keys: unusedKeys{}, Leases: unusedLeases{},
		Queue: q, Tenants: listTenants(n), ScheduleParallelism: parallelism,
		PlatformKey: keywrap.Ref{VaultURL: "https://p.vault.azure.net/", KeyName: "p"},
		Catalog:     catmem.New(), Blobs: blobmem.New(),
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := svc.Schedule(t.Context(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Enqueued != n {
		t.Fatalf("report %+v, want %d enqueued", rep, n)
	}
	if q.max != parallelism {
		t.Fatalf("at most %d enqueues in flight, want %d", q.max, parallelism)
	}
}

// gateQueue holds each Enqueue until want of them are in flight at once
// (or one of them has waited a second, so a sequential fan-out fails the
// test rather than hanging it), recording the most seen in flight.
type gateQueue struct {
	want     int
	mu       sync.Mutex
	inFlight int
	max      int
	released chan struct{}
	once     sync.Once
}

func (q *gateQueue) Enqueue(ctx context.Context, _ string, _ any) error {
	q.mu.Lock()
	q.inFlight++
	q.max = max(q.max, q.inFlight)
	if q.inFlight >= q.want {
		q.once.Do(func() { close(q.released) })
	}
	q.mu.Unlock()
	select {
	case <-q.released:
	case <-time.After(time.Second):
		q.once.Do(func() { close(q.released) })
	case <-ctx.Done():
	}
	q.mu.Lock()
	q.inFlight--
	q.mu.Unlock()
	return nil
}

// listTenants is a Tenants of n enabled tenants.
type listTenants int

func (l listTenants) Enabled(_ context.Context, c *tenants.Counts) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		for i := range int(l) {
			c.Enabled++
			if !yield(fmt.Sprintf("t%05d", i), nil) {
				return
			}
		}
	}
}

func (l listTenants) Exists(context.Context, string) (bool, error) { return true, nil }
