package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/twinit/byok-backup/internal/edge/invoke"
)

var errNotWired = errors.New("server: function not wired")

// invocationDeadline leaves a margin below functionTimeout so a handler can
// record its failure before the host gives up on it.
func (s *Server) invocationDeadline() time.Duration {
	margin := min(time.Minute, s.cfg.FunctionTimeout/10)
	return s.cfg.FunctionTimeout - margin
}

// readInvocation reads a payload-mode body within the size limit.
func (s *Server) readInvocation(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxInvokeBody))
}

func (s *Server) timer(name string, fn TimerFunc) http.Handler {
	return s.invocation(name, fn == nil, func(ctx context.Context, body []byte) (error, error) {
		req, err := invoke.DecodeTimer(body, "")
		if err != nil {
			return err, nil
		}
		return nil, fn(ctx, req)
	})
}

func (s *Server) queue(name string, fn QueueFunc) http.Handler {
	return s.invocation(name, fn == nil, func(ctx context.Context, body []byte) (error, error) {
		req, err := invoke.DecodeQueue(body, "")
		if err != nil {
			return err, nil
		}
		return nil, fn(ctx, req)
	})
}

// invocation runs one payload-mode function. run returns a decoding error
// (400) or the handler's error (500); both fail the invocation, which for
// a queue message means a retry and, after maxDequeueCount, the poison
// queue. The host discards the body of a failed invocation, so failures are
// logged here.
func (s *Server) invocation(name string, notWired bool, run func(ctx context.Context, body []byte) (decodeErr, err error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := requestID(r)
		log := s.log.With("function", name, "invocationId", id)
		if notWired {
			log.Error("function not wired: the handler has no implementation for it", "err", errNotWired)
			_ = invoke.Write(w, http.StatusInternalServerError, invoke.Response{Logs: []string{name + ": function not wired"}})
			return
		}
		body, err := s.readInvocation(w, r)
		if err != nil {
			log.Error("invocation body could not be read", "err", err)
			_ = invoke.Write(w, http.StatusBadRequest, invoke.Response{Logs: []string{name + ": invocation body could not be read"}})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.invocationDeadline())
		defer cancel()
		start := time.Now()
		decodeErr, err := run(ctx, body)
		switch {
		case decodeErr != nil:
			log.Error("invocation payload is malformed", "err", decodeErr)
			_ = invoke.Write(w, http.StatusBadRequest, invoke.Response{Logs: []string{name + ": malformed invocation payload"}})
		case err != nil:
			log.Error("invocation failed", "err", err, "durationMs", time.Since(start).Milliseconds())
			_ = invoke.Write(w, http.StatusInternalServerError, invoke.Response{Logs: []string{name + ": failed; see the handler log for invocation " + id}})
		default:
			log.Info("invocation completed", "durationMs", time.Since(start).Milliseconds())
			_ = invoke.Write(w, http.StatusOK, invoke.Response{Logs: []string{name + ": completed"}})
		}
	})
}
