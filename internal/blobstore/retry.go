package blobstore

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"
)

// RetryOptions tune [NewRetry]; nil or zero fields mean defaults.
type RetryOptions struct {
	// MaxAttempts per operation, the first included (default 5).
	MaxAttempts int
	// BaseDelay before the first retry; it doubles each time (default 200ms).
	BaseDelay time.Duration
	// MaxDelay caps one wait (default 10s).
	MaxDelay time.Duration
	// Logger gets one warning per retry (default: discard).
	Logger *slog.Logger
}

// Retry decorates a Store: operations that fail with a transient error
// ([IsTransient]) are retried with exponential backoff and full jitter;
// anything else is returned at once. It sits on top of the SDK's own
// per-request retries and also covers what those miss, such as a
// connection that breaks while a body is read.
type Retry struct {
	Store
	opts RetryOptions
}

var (
	_ Store      = (*Retry)(nil)
	_ IntoGetter = (*Retry)(nil)
)

// NewRetry wraps s.
func NewRetry(s Store, opts *RetryOptions) *Retry {
	r := &Retry{Store: s}
	if opts != nil {
		r.opts = *opts
	}
	if r.opts.MaxAttempts <= 0 {
		r.opts.MaxAttempts = 5
	}
	if r.opts.BaseDelay <= 0 {
		r.opts.BaseDelay = 200 * time.Millisecond
	}
	if r.opts.MaxDelay <= 0 {
		r.opts.MaxDelay = 10 * time.Second
	}
	if r.opts.Logger == nil {
		r.opts.Logger = slog.New(slog.DiscardHandler)
	}
	return r
}

func (r *Retry) do(ctx context.Context, op, name string, fn func() error) error {
	delay := r.opts.BaseDelay
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !IsTransient(err) || attempt >= r.opts.MaxAttempts {
			return err
		}
		wait := time.Duration(rand.Int64N(int64(delay)) + 1)
		r.opts.Logger.WarnContext(ctx, "retrying blob storage operation",
			"op", op, "blob", name, "attempt", attempt, "wait", wait, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		delay = min(2*delay, r.opts.MaxDelay)
	}
}

func (r *Retry) PutBlob(ctx context.Context, name string, data []byte) error {
	return r.do(ctx, "put", name, func() error { return r.Store.PutBlob(ctx, name, data) })
}

func (r *Retry) GetBlob(ctx context.Context, name string) ([]byte, error) {
	var data []byte
	err := r.do(ctx, "get", name, func() error {
		var err error
		data, err = r.Store.GetBlob(ctx, name)
		return err
	})
	return data, err
}

// List resumes after the last name it delivered, so fn never sees a blob
// twice. An error from fn is final, never retried, whatever it wraps.
// GetBlobInto retries like GetBlob, each try reading into buf again.
func (r *Retry) GetBlobInto(ctx context.Context, name string, buf []byte, limit int64) ([]byte, error) {
	var data []byte
	err := r.do(ctx, "get", name, func() error {
		var err error
		data, err = GetInto(ctx, r.Store, name, buf, limit)
		return err
	})
	return data, err
}

func (r *Retry) List(ctx context.Context, prefix string, fn func(Info) error) error {
	last := ""
	var fnErr error
	err := r.do(ctx, "list", prefix, func() error {
		err := r.Store.List(ctx, prefix, func(i Info) error {
			if last != "" && i.Name <= last {
				return nil
			}
			if fnErr = fn(i); fnErr != nil {
				return errStopped
			}
			last = i.Name
			return nil
		})
		if fnErr != nil {
			return errStopped
		}
		return err
	})
	if fnErr != nil {
		return fnErr
	}
	return err
}

// errStopped hides the caller's error from the retry loop.
var errStopped = errors.New("blobstore: listing stopped by the caller")

func (r *Retry) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	total := 0
	err := r.do(ctx, "delete", prefix, func() error {
		n, err := r.Store.DeletePrefix(ctx, prefix)
		total += n
		return err
	})
	return total, err
}
