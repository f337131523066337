// Package azqueue puts job messages on Azure Queue Storage queues, encoded
// by [jobqueue.Encode]: JSON, base64-encoded on the queue, as host.json's
// `extensions.queues.messageEncoding: base64` expects.
package azqueue

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/queueerror"

	"github.com/twinit/byok-backup/internal/jobqueue"
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

// Enqueue adds msg, as [jobqueue.Encode] encodes it, to queue, creating the
// queue the first time this Queue uses it.
func (q *Queue) Enqueue(ctx context.Context, queue string, msg any) error {
	return q.EnqueueAfter(ctx, queue, msg, 0)
}

// EnqueueAfter is [Queue.Enqueue] with the message invisible for delay
// (rounded up to whole seconds, the service's unit; at most
// [jobqueue.MaxDelay]):
// the queue itself holds a retry back, so no process has to stay alive
// for it, and the Functions host (or the local runner) sees it only then.
func (q *Queue) EnqueueAfter(ctx context.Context, queue string, msg any, delay time.Duration) error {
	if delay < 0 || delay > jobqueue.MaxDelay {
		return fmt.Errorf("failed to enqueue to %s: delay %s is outside 0..%s", queue, delay, jobqueue.MaxDelay)
	}
	content, err := jobqueue.Encode(queue, msg)
	if err != nil {
		return err
	}
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
