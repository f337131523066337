package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// RunOptions configure [Run].
type RunOptions struct {
	// FunctionTimeout is host.json's functionTimeout; read and write
	// timeouts exceed it by two minutes (the host waits functionTimeout +
	// 1 min), so the server never cuts an invocation the host still awaits.
	FunctionTimeout time.Duration
	// DrainTimeout bounds the wait for in-flight invocations after the
	// context ends; default 60 s.
	DrainTimeout time.Duration
	Logger       *slog.Logger
}

// NewHTTPServer returns an http.Server with timeouts fitted to the
// function timeout and base contexts from base.
func NewHTTPServer(base context.Context, h http.Handler, o RunOptions) *http.Server {
	if o.FunctionTimeout <= 0 {
		o.FunctionTimeout = 30 * time.Minute
	}
	long := o.FunctionTimeout + 2*time.Minute
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       long,
		WriteTimeout:      long,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return base },
	}
}

// Run serves h on ln until ctx ends, then stops accepting, waits up to
// DrainTimeout for in-flight requests to finish and only then cancels their
// contexts. It returns nil after a clean drain.
func Run(ctx context.Context, ln net.Listener, h http.Handler, o RunOptions) error {
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 60 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	// Request contexts derive from base, not ctx: a SIGTERM must not cancel
	// the work it is waiting for.
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	srv := NewHTTPServer(base, h, o)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("server: serve: %w", err)
	case <-ctx.Done():
	}
	o.Logger.Info("shutting down: draining in-flight invocations", "drainTimeout", o.DrainTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), o.DrainTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	cancelBase() // only now: in-flight work has finished or run out of time
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("server: drain did not finish within %s: %w", o.DrainTimeout, err)
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("server: serve: %w", serr)
	}
	o.Logger.Info("shut down cleanly")
	return nil
}
