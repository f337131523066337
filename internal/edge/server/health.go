package server

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// healthReport is the body of GET /api/health: names and outcomes only,
// never error text (it could carry a URL, a key id or Azure's response).
type healthReport struct {
	Status string            `json:"status"` // "ok" or "degraded"
	Checks map[string]string `json:"checks"` // name → "ok" | "failed" | "timeout"
}

type health struct {
	checks  []NamedCheck
	timeout time.Duration
	ttl     time.Duration
	log     *slog.Logger
	now     func() time.Time

	mu     sync.Mutex // held while checking, so concurrent probes share one run
	last   healthReport
	lastAt time.Time
}

func newHealth(checks []NamedCheck, timeout, ttl time.Duration, log *slog.Logger) *health {
	return &health{checks: checks, timeout: timeout, ttl: ttl, log: log, now: time.Now}
}

func (h *health) report(ctx context.Context) healthReport {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.lastAt.IsZero() && h.now().Sub(h.lastAt) < h.ttl {
		return h.last
	}
	rep := healthReport{Status: "ok", Checks: make(map[string]string, len(h.checks))}
	results := make([]string, len(h.checks))
	var wg sync.WaitGroup
	// Checks run detached from the probe's cancellation (the result is
	// shared) but bounded by the timeout.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.timeout)
	defer cancel()
	for i, c := range h.checks {
		wg.Go(func() {
			done := make(chan error, 1)
			go func() { done <- c.Checker.Check(cctx) }()
			select {
			case err := <-done:
				if err != nil {
					h.log.Warn("health check failed", "check", c.Name, "err", err)
					results[i] = "failed"
					return
				}
				results[i] = "ok"
			case <-cctx.Done():
				h.log.Warn("health check timed out", "check", c.Name, "timeout", h.timeout)
				results[i] = "timeout"
			}
		})
	}
	wg.Wait()
	for i, c := range h.checks {
		rep.Checks[c.Name] = results[i]
		if results[i] != "ok" {
			rep.Status = "degraded"
		}
	}
	h.last, h.lastAt = rep, h.now()
	return rep
}

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	rep := s.health.report(r.Context())
	status := http.StatusOK
	if rep.Status != "ok" {
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Cache-Control", "no-store")
	WriteJSON(w, status, rep)
}
