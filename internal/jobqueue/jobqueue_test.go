package jobqueue_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/twinit/byok-backup/internal/azurite"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/jobqueue"
)

// Azurite starts on first use rather than in TestMain, so fuzz workers
// (each a copy of the test binary) of the decoder fuzz tests don't start one.
var (
	azOnce sync.Once
	az     *azurite.Instance
	azErr  error
)

func storage(t *testing.T) *azurite.Instance {
	t.Helper()
	azOnce.Do(func() { az, azErr = azurite.Start(context.Background(), azurite.Options{}) })
	if azErr != nil {
		t.Fatalf("azurite: %v", azErr)
	}
	return az
}

func TestMain(m *testing.M) {
	code := m.Run()
	if az != nil {
		az.Stop()
	}
	os.Exit(code)
}

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
	q := jobqueue.New(svc)
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
	q := jobqueue.New(svc)
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
	q := jobqueue.New(service(t, counter))
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
