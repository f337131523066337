// Package jobqueue puts job messages on the job queues (by default
// `backup-jobs` and `restore-jobs`) and strictly decodes them for the
// workers (contract §1).
//
// Messages are JSON, base64-encoded on the queue: host.json declares
// `extensions.queues.messageEncoding: base64` (the host's default), and the
// host sends a message that is not valid base64 straight to the poison queue.
package jobqueue

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/queueerror"
)

// Queue enqueues messages. Safe for concurrent use.
type Queue struct {
	svc *azqueue.ServiceClient

	mu    sync.Mutex
	ready map[string]bool // queues known to exist
}

// New returns a Queue over the storage account's queue service client.
func New(svc *azqueue.ServiceClient) *Queue {
	return &Queue{svc: svc, ready: map[string]bool{}}
}

// validator is implemented by the job messages; Enqueue refuses an invalid
// one rather than poison the queue.
type validator interface{ Validate() error }

// Enqueue JSON-encodes msg, base64-encodes the JSON and adds it to queue,
// creating the queue the first time this Queue uses it. If msg has a
// Validate method it must pass.
func (q *Queue) Enqueue(ctx context.Context, queue string, msg any) error {
	return q.EnqueueAfter(ctx, queue, msg, 0)
}

// MaxDelay is Azure Queue Storage's longest initial visibility delay.
const MaxDelay = 7 * 24 * time.Hour

// EnqueueAfter is [Queue.Enqueue] with the message invisible for delay
// (rounded up to whole seconds, the service's unit; at most [MaxDelay]):
// the queue itself holds a retry back, so no process has to stay alive
// for it, and the Functions host (or the local runner) sees it only then.
func (q *Queue) EnqueueAfter(ctx context.Context, queue string, msg any, delay time.Duration) error {
	if delay < 0 || delay > MaxDelay {
		return fmt.Errorf("failed to enqueue to %s: delay %s is outside 0..%s", queue, delay, MaxDelay)
	}
	if v, ok := msg.(validator); ok {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("failed to enqueue to %s: %w", queue, err)
		}
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("failed to encode message for %s: %w", queue, err)
	}
	if len(body) > MaxMessageSize*3/4 {
		return fmt.Errorf("failed to enqueue to %s: %w", queue, invalid("message of %d bytes is too large once base64-encoded", len(body)))
	}
	content := base64.StdEncoding.EncodeToString(body)
	var opts *azqueue.EnqueueMessageOptions
	if delay > 0 {
		secs := int32((delay + time.Second - 1) / time.Second)
		opts = &azqueue.EnqueueMessageOptions{VisibilityTimeout: &secs}
	}
	qc := q.svc.NewQueueClient(queue)
	if err := q.ensure(ctx, queue, qc); err != nil {
		return err
	}
	_, err = qc.EnqueueMessage(ctx, content, opts)
	if queueerror.HasCode(err, queueerror.QueueNotFound) {
		// Deleted since it was cached: create it again, once.
		q.forget(queue)
		if err := q.ensure(ctx, queue, qc); err != nil {
			return err
		}
		_, err = qc.EnqueueMessage(ctx, content, opts)
	}
	if err != nil {
		return fmt.Errorf("failed to enqueue to %s: %w", queue, err)
	}
	return nil
}

func (q *Queue) ensure(ctx context.Context, name string, qc *azqueue.QueueClient) error {
	q.mu.Lock()
	ok := q.ready[name]
	q.mu.Unlock()
	if ok {
		return nil
	}
	if _, err := qc.Create(ctx, nil); err != nil && !queueerror.HasCode(err, queueerror.QueueAlreadyExists) {
		return fmt.Errorf("failed to create queue %s: %w", name, err)
	}
	q.mu.Lock()
	q.ready[name] = true
	q.mu.Unlock()
	return nil
}

func (q *Queue) forget(name string) {
	q.mu.Lock()
	delete(q.ready, name)
	q.mu.Unlock()
}
