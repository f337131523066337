package runner

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/queueerror"

	"github.com/twinit/byok-backup/internal/devstack/runner/approot"
	"github.com/twinit/byok-backup/internal/ptr"
)

// queueTrigger is one queue-triggered function and the queues it uses.
type queueTrigger struct {
	fn      approot.Function
	binding approot.Binding
	name    string // resolved queue name
	queue   *azqueue.QueueClient
	poison  *azqueue.QueueClient
}

// message is one dequeued message, decoded.
type message struct {
	id, popReceipt, raw string
	dequeueCount        int64
	inserted, expires   time.Time
	nextVisible         time.Time
}

func (r *Runner) newQueueTrigger(ctx context.Context, fn approot.Function, b approot.Binding) (*queueTrigger, error) {
	name, err := resolve(b.QueueName, r.settings)
	if err != nil {
		return nil, fmt.Errorf("function %s: %w", fn.Name, err)
	}
	name = strings.ToLower(name)
	svc, err := r.queueService(b.Connection)
	if err != nil {
		return nil, fmt.Errorf("function %s: %w", fn.Name, err)
	}
	q := &queueTrigger{fn: fn, binding: b, name: name,
		queue: svc.NewQueueClient(name), poison: svc.NewQueueClient(name + "-poison")}
	// Creating the queues is a local convenience: the handler can enqueue
	// before anything else has created them.
	for _, c := range []*azqueue.QueueClient{q.queue, q.poison} {
		if err := createQueue(ctx, c); err != nil {
			return nil, fmt.Errorf("function %s: %w", fn.Name, err)
		}
	}
	return q, nil
}

func createQueue(ctx context.Context, c *azqueue.QueueClient) error {
	if _, err := c.Create(ctx, nil); err != nil && !queueerror.HasCode(err, queueerror.QueueAlreadyExists) {
		return fmt.Errorf("failed to create queue %s (is Azurite running?): %w", c.URL(), err)
	}
	return nil
}

func (r *Runner) queueService(connection string) (*azqueue.ServiceClient, error) {
	cs, err := connectionString(connection, r.settings)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.queueClients[cs]; ok {
		return c, nil
	}
	c, err := azqueue.NewServiceClientFromConnectionString(cs, nil)
	if err != nil {
		return nil, fmt.Errorf("storage connection %q is not a valid connection string: %w", connection, err)
	}
	r.queueClients[cs] = c
	return c, nil
}

// pump polls one queue until ctx ends, running at most batchSize
// invocations at once. Polling backs off to maxPollingInterval while the
// queue is empty, like the host's listener.
func (r *Runner) pump(ctx context.Context, q *queueTrigger) {
	opts := r.queueOpts
	sem := make(chan struct{}, opts.BatchSize)
	var wg sync.WaitGroup
	defer wg.Wait()
	wait := r.minPoll
	for {
		free := cap(sem) - len(sem)
		got := 0
		if free > 0 {
			resp, err := q.queue.DequeueMessages(ctx, &azqueue.DequeueMessagesOptions{
				NumberOfMessages:  new(int32(free)),
				VisibilityTimeout: new(r.leaseSeconds()),
			})
			if err != nil && ctx.Err() == nil {
				r.log.Warn("queue poll failed", "queue", q.name, "err", err)
			}
			for _, m := range resp.Messages {
				msg := message{id: ptr.Value(m.MessageID), popReceipt: ptr.Value(m.PopReceipt), raw: ptr.Value(m.MessageText),
					dequeueCount: ptr.Value(m.DequeueCount), inserted: ptr.Value(m.InsertionTime),
					expires: ptr.Value(m.ExpirationTime), nextVisible: ptr.Value(m.TimeNextVisible)}
				got++
				sem <- struct{}{}
				wg.Add(1)
				go func() {
					defer func() { <-sem; wg.Done() }()
					r.process(q, msg)
				}()
			}
		}
		if got > 0 {
			wait = r.minPoll
		} else if wait *= 2; wait > r.maxPoll {
			wait = r.maxPoll
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// leaseSeconds is how long a dequeued message stays invisible while its
// invocation runs: functionTimeout plus a minute, at least 30 s, at most the
// service's 7 days.
func (r *Runner) leaseSeconds() int32 {
	d := time.Duration(r.app.Host.FunctionTimeout)
	if d <= 0 {
		d = 10 * time.Minute
	}
	s := int64((d + time.Minute) / time.Second)
	return int32(min(max(s, 30), 7*24*3600))
}

// process runs one message: decode, invoke, then delete, retry or poison.
// It uses the runner's base context, not the pump's, so a message being
// worked on when the runner stops still finishes.
func (r *Runner) process(q *queueTrigger, m message) {
	ctx := r.baseCtx
	log := r.log.With("function", q.fn.Name, "queue", q.name, "messageId", m.id, "dequeueCount", m.dequeueCount)
	text, err := decodeMessage(m.raw, r.queueOpts.MessageEncoding)
	if err != nil {
		// The host can't bind it, retrying can't help (azure-sdk-for-net #18326).
		log.Warn("message is not valid base64; moving it to the poison queue", "err", err)
		r.toPoison(ctx, q, m, log)
		return
	}
	if m.dequeueCount > int64(r.queueOpts.MaxDequeueCount) {
		r.toPoison(ctx, q, m, log)
		return
	}
	_, err = r.invoke(ctx, q.fn, "queue", queuePayload(q.fn.Name, q.binding.Name, text, m, time.Now()))
	switch {
	case err == nil:
		if _, err := q.queue.DeleteMessage(ctx, m.id, m.popReceipt, nil); err != nil {
			log.Error("failed to delete a processed message; it will run again", "err", err)
		}
	case m.dequeueCount >= int64(r.queueOpts.MaxDequeueCount):
		r.toPoison(ctx, q, m, log)
	default:
		vis := int32(time.Duration(r.queueOpts.VisibilityTimeout) / time.Second)
		if _, err := q.queue.UpdateMessage(ctx, m.id, m.popReceipt, m.raw,
			&azqueue.UpdateMessageOptions{VisibilityTimeout: &vis}); err != nil {
			log.Warn("failed to release a failed message; it becomes visible when its lease ends", "err", err)
		}
	}
}

// toPoison copies the message text unchanged to <queue>-poison, then
// deletes the original.
func (r *Runner) toPoison(ctx context.Context, q *queueTrigger, m message, log interface {
	Warn(string, ...any)
	Error(string, ...any)
}) {
	if _, err := q.poison.EnqueueMessage(ctx, m.raw, &azqueue.EnqueueMessageOptions{TimeToLive: new(int32(-1))}); err != nil {
		log.Error("failed to move a message to the poison queue", "err", err)
		return
	}
	if _, err := q.queue.DeleteMessage(ctx, m.id, m.popReceipt, nil); err != nil {
		log.Error("failed to delete a poisoned message", "err", err)
	}
	log.Warn("message moved to the poison queue", "poisonQueue", q.name+"-poison")
}

// ErrNotBase64 is returned for a message that isn't base64 under the
// default messageEncoding.
var ErrNotBase64 = errors.New("queue message is not valid base64")

func decodeMessage(raw, encoding string) (string, error) {
	if strings.EqualFold(encoding, "none") {
		return raw, nil
	}
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNotBase64, err)
	}
	return string(b), nil
}

// encodeMessage is decodeMessage's inverse, for queue output bindings.
func encodeMessage(text, encoding string) string {
	if strings.EqualFold(encoding, "none") {
		return text
	}
	return base64.StdEncoding.EncodeToString([]byte(text))
}

// queuePayload builds the invocation exactly as the host does for a string
// queue trigger (docs/research/functions-custom-handler.md §3.4, the captured
// payload): the message text JSON-encoded inside a JSON string, DequeueCount
// a string, Id and PopReceipt quoted, times as offsets without fractions.
func queuePayload(fn, bindingName, text string, m message, now time.Time) payload {
	md := map[string]any{
		"DequeueCount":    strconv.FormatInt(m.dequeueCount, 10),
		"ExpirationTime":  m.expires.UTC().Format(netOffset),
		"Id":              hostString(m.id),
		"InsertionTime":   m.inserted.UTC().Format(netOffset),
		"NextVisibleTime": m.nextVisible.UTC().Format(netOffset),
		"PopReceipt":      hostString(m.popReceipt),
		"sys":             sysMetadata(fn, now),
	}
	addBindingData(md, text)
	return payload{Data: map[string]any{bindingName: hostString(text)}, Metadata: md}
}

// addBindingData adds a JSON-object message's top-level non-array
// properties to Metadata, as the host's binding data does; names the trigger
// already set win, and names ending in "trigger" are skipped (§3.2).
func addBindingData(md map[string]any, text string) {
	var obj map[string]json.RawMessage
	if json.Unmarshal([]byte(text), &obj) != nil {
		return
	}
	taken := map[string]bool{}
	for k := range md {
		taken[strings.ToLower(k)] = true
	}
	for k, v := range obj {
		lk := strings.ToLower(k)
		if taken[lk] || strings.HasSuffix(lk, "trigger") {
			continue
		}
		var val any
		if json.Unmarshal(v, &val) != nil {
			continue
		}
		switch val.(type) {
		case nil, []any:
			continue
		case map[string]any:
			md[k] = v
		default:
			md[k] = hostString(val)
		}
		taken[lk] = true
	}
}

// enqueue writes queue output binding messages, encoded per messageEncoding.
func (r *Runner) enqueue(ctx context.Context, b approot.Binding, msgs []string) error {
	name, err := resolve(b.QueueName, r.settings)
	if err != nil {
		return err
	}
	svc, err := r.queueService(b.Connection)
	if err != nil {
		return err
	}
	c := svc.NewQueueClient(strings.ToLower(name))
	if err := createQueue(ctx, c); err != nil {
		return err
	}
	for _, m := range msgs {
		if _, err := c.EnqueueMessage(ctx, encodeMessage(m, r.queueOpts.MessageEncoding), nil); err != nil {
			return fmt.Errorf("failed to enqueue to %s: %w", name, err)
		}
	}
	return nil
}
