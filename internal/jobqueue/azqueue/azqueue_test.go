package azqueue_test

import (
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/devstack/azurite"
	"github.com/twinit/byok-backup/internal/jobqueue"
	jqazqueue "github.com/twinit/byok-backup/internal/jobqueue/azqueue"
)

// One Azurite for the package (the decoders' fuzz tests, which start none,
// stayed in jobqueue).
var az *azurite.Instance

var at = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func storage(t *testing.T) *azurite.Instance {
	t.Helper()
	if az == nil {
		t.Fatal("azurite is not running (a fuzz worker starts none)")
	}
	return az
}

func TestMain(m *testing.M) { azurite.RunTests(m, &az) }

// countCreates counts Create Queue requests (PUT on the queue itself).
type countCreates struct{ n atomic.Int32 }

func (c *countCreates) Do(req *policy.Request) (*http.Response, error) {
	r := req.Raw()
	if r.Method == http.MethodPut && !strings.Contains(r.URL.Path, "/messages") {
		c.n.Add(1)
	}
	return req.Next()
}

func service(t *testing.T, p policy.Policy) *azqueue.ServiceClient {
	t.Helper()
	opts := &azqueue.ClientOptions{}
	if p != nil {
		opts.PerCallPolicies = []policy.Policy{p}
	}
	svc, err := azqueue.NewServiceClientFromConnectionString(storage(t).ConnectionString(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// receive dequeues one message and undoes the host's base64 decoding step.
func receive(t *testing.T, svc *azqueue.ServiceClient, queue string) []byte {
	t.Helper()
	resp, err := svc.NewQueueClient(queue).DequeueMessage(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Messages) != 1 {
		t.Fatalf("%d messages on %s, want 1", len(resp.Messages), queue)
	}
	text, err := base64.StdEncoding.DecodeString(*resp.Messages[0].MessageText)
	if err != nil {
		t.Fatalf("message text is not base64 (the host would poison it): %v", err)
	}
	return text
}

func TestEnqueueBackupJob(t *testing.T) {
	counter := &countCreates{}
	svc := service(t, counter)
	q := jqazqueue.New(svc)
	queue := "backup-jobs-enqueue" // does not exist yet
	want := jobqueue.BackupJob{Tenant: "acme", BackupID: catalog.NewID(at), Reason: catalog.ReasonManual, RequestedAt: at}
	for range 3 {
		if err := q.Enqueue(t.Context(), queue, want); err != nil {
			t.Fatal(err)
		}
	}
	if n := counter.n.Load(); n != 1 {
		t.Fatalf("queue created %d times, want once", n)
	}
	for range 3 {
		got, err := jobqueue.DecodeBackupJob(receive(t, svc, queue))
		if err != nil || got != want {
			t.Fatalf("received %+v, %v; want %+v", got, err, want)
		}
	}
}

func TestEnqueueRestoreJobRecreatesDeletedQueue(t *testing.T) {
	svc := service(t, nil)
	q := jqazqueue.New(svc)
	queue := "restore-jobs-recreate"
	job := jobqueue.RestoreJob{Tenant: "acme", RestoreID: catalog.NewID(at)}
	if err := q.Enqueue(t.Context(), queue, job); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.NewQueueClient(queue).Delete(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(t.Context(), queue, job); err != nil {
		t.Fatalf("enqueue after the cached queue was deleted: %v", err)
	}
	got, err := jobqueue.DecodeRestoreJob(receive(t, svc, queue))
	if err != nil || got != job {
		t.Fatalf("received %+v, %v", got, err)
	}
}

func TestEnqueueRefusesInvalid(t *testing.T) {
	counter := &countCreates{}
	q := jqazqueue.New(service(t, counter))
	for _, msg := range []any{
		jobqueue.BackupJob{Tenant: "acme", BackupID: "no/pe", Reason: catalog.ReasonManual, RequestedAt: at},
		jobqueue.RestoreJob{Tenant: "", RestoreID: catalog.NewID(at)},
		map[string]string{"big": strings.Repeat("x", jobqueue.MaxMessageSize)},
	} {
		if err := q.Enqueue(t.Context(), "never-created", msg); !errors.Is(err, jobqueue.ErrInvalidMessage) {
			t.Errorf("Enqueue(%T) = %v, want ErrInvalidMessage", msg, err)
		}
	}
	if counter.n.Load() != 0 {
		t.Fatal("an invalid message reached the service")
	}
}

// capture records the visibilitytimeout of Put Message requests.
type capture struct {
	mu  sync.Mutex
	vis []string
}

func (c *capture) Do(req *policy.Request) (*http.Response, error) {
	r := req.Raw()
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/messages") {
		c.mu.Lock()
		c.vis = append(c.vis, r.URL.Query().Get("visibilitytimeout"))
		c.mu.Unlock()
	}
	return req.Next()
}

// EnqueueAfter asks the queue service to hide the message for the delay
// (rounded up to seconds), and the message does stay invisible until then
// and arrives after it: the host and the local runner only see visible
// messages, so a delayed retry needs no process waiting for it.
func TestEnqueueAfterDelaysVisibility(t *testing.T) {
	c := &capture{}
	svc := service(t, c)
	q := jqazqueue.New(svc)
	queue := "backup-jobs-delayed"
	job := jobqueue.BackupJob{Tenant: "acme", BackupID: catalog.NewID(at), Reason: catalog.ReasonManual, RequestedAt: at}
	if err := q.EnqueueAfter(t.Context(), queue, job, 4500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(t.Context(), queue, job); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	vis := slices.Clone(c.vis)
	c.mu.Unlock()
	if !slices.Equal(vis, []string{"5", ""}) {
		t.Fatalf("visibilitytimeout sent = %q, want [5, none]", vis)
	}
	// Only the undelayed message is visible now.
	qc := svc.NewQueueClient(queue)
	n := int32(32)
	resp, err := qc.PeekMessages(t.Context(), &azqueue.PeekMessagesOptions{NumberOfMessages: &n})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Messages) != 1 {
		t.Fatalf("%d messages visible right after enqueueing, want 1 (the delayed one hidden)", len(resp.Messages))
	}
	receiveAndDelete(t, qc)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		resp, err := qc.PeekMessages(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Messages) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the delayed message never became visible")
		}
	}
	if got, err := jobqueue.DecodeBackupJob(receive(t, svc, queue)); err != nil || got != job {
		t.Fatalf("received %+v, %v", got, err)
	}
	for _, d := range []time.Duration{-time.Second, jobqueue.MaxDelay + time.Second} {
		if err := q.EnqueueAfter(t.Context(), queue, job, d); err == nil {
			t.Errorf("EnqueueAfter(%s) accepted", d)
		}
	}
}

func receiveAndDelete(t *testing.T, qc *azqueue.QueueClient) {
	t.Helper()
	resp, err := qc.DequeueMessage(t.Context(), nil)
	if err != nil || len(resp.Messages) != 1 {
		t.Fatalf("dequeue: %v (%d messages)", err, len(resp.Messages))
	}
	if _, err := qc.DeleteMessage(t.Context(), *resp.Messages[0].MessageID, *resp.Messages[0].PopReceipt, nil); err != nil {
		t.Fatal(err)
	}
}
