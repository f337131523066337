package kvemu

import (
	"net/http"
	"strings"
	"time"
)

// maxRequests bounds the request log of a long-running emulator.
const maxRequests = 10000

// Request is one request the emulator received.
type Request struct {
	Vault  string
	Method string
	Path   string
	Caller string // caller id ("admin", "platform", "<app>.<tenant>"); "" when unauthenticated
	Op     string // "get", "list", "wrapKey", "unwrapKey", "create", "update", "rotate", "delete", "challenge", "control", ...
	Status int    // 0 when the connection was closed without an answer
	At     time.Time
}

// Requests returns a copy of the request log, oldest first.
func (e *Emulator) Requests() []Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Request(nil), e.reqs...)
}

// ResetRequests empties the request log.
func (e *Emulator) ResetRequests() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reqs = nil
}

// CountOps counts logged requests for op on vault ("" = every vault),
// whatever their status (throttled and failed attempts included).
func (e *Emulator) CountOps(vaultName, op string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, r := range e.reqs {
		if r.Op == op && (vaultName == "" || strings.EqualFold(r.Vault, vaultName)) {
			n++
		}
	}
	return n
}

func (e *Emulator) logRequest(r Request) {
	e.mu.Lock()
	if len(e.reqs) >= maxRequests {
		e.reqs = append(e.reqs[:0], e.reqs[len(e.reqs)-maxRequests/2:]...)
	}
	e.reqs = append(e.reqs, r)
	e.mu.Unlock()
	e.log.Debug("kvemu: request", "vault", r.Vault, "method", r.Method, "path", r.Path,
		"caller", r.Caller, "op", r.Op, "status", r.Status)
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}
