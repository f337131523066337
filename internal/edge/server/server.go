// Package server is the custom handler's HTTP side: readiness for the
// Functions host, the anonymous health route, payload-mode dispatch of the
// timer and queue functions, and the authenticated API routes the host
// forwards (enableForwardingHttpRequest) with their full /api/... path.
//
// Handlers return errors; one adapter ([Server.writeError]) maps them
// through errcode.Status to API.md's {"error": {"code", "message"}}
// body. Causes of 5xx answers are logged with the request id and never
// returned.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"

	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/edge/invoke"
	"github.com/twinit/byok-backup/internal/errcode"
)

// TimerFunc handles one timer invocation.
type TimerFunc func(ctx context.Context, req *invoke.TimerRequest) error

// QueueFunc handles one queue message. Returning an error fails the
// invocation, so the host retries the message and finally poisons it.
type QueueFunc func(ctx context.Context, req *invoke.QueueRequest) error

// APIHandler serves one forwarded HTTP route for an authenticated and
// authorized principal.
type APIHandler func(w http.ResponseWriter, r *http.Request, p auth.Principal) error

// Authenticator verifies a request's caller (auth.Verifier in production).
type Authenticator interface {
	Authenticate(r *http.Request) (auth.Principal, error)
}

// Checker is one dependency the health route reports on.
type Checker interface {
	Check(ctx context.Context) error
}

// CheckFunc adapts a function to [Checker].
type CheckFunc func(ctx context.Context) error

// Check calls f.
func (f CheckFunc) Check(ctx context.Context) error { return f(ctx) }

// NamedCheck names a [Checker] in the health report ("storage", "platformKey").
type NamedCheck struct {
	Name    string
	Checker Checker
}

// Config is everything the server needs besides its routes and functions,
// which are registered with [Server.HandleAPI], [Server.HandleQueue] and
// [Server.HandleTimer].
type Config struct {
	Logger *slog.Logger // default slog.Default()
	Auth   Authenticator

	Checks []NamedCheck

	// FunctionTimeout is host.json's functionTimeout (default 30 min): the
	// host gives up on an invocation after it plus one minute.
	FunctionTimeout time.Duration
	// APITimeout bounds forwarded HTTP requests; default 200 s, below the
	// 230 s the Azure front end allows an HTTP response.
	APITimeout time.Duration
	// HealthTimeout bounds each health check (default 5 s); HealthCacheTTL is
	// how long a health result is reused (default 10 s).
	HealthTimeout  time.Duration
	HealthCacheTTL time.Duration
	// MaxInvokeBody limits payload-mode request bodies (default 1 MiB; queue
	// messages are at most 64 KiB).
	MaxInvokeBody int64
}

// Server routes requests. Build it with [New], register API routes and
// functions with [Server.HandleAPI], [Server.HandleQueue] and
// [Server.HandleTimer], then [Server.Install] them on a mux.
type Server struct {
	cfg    Config
	log    *slog.Logger
	apis   []apiRoute
	public []publicRoute
	funcs  []function
	health *health
}

// function is one payload-mode function: a queue or timer trigger the host
// posts to /{name}.
type function struct {
	name string
	h    http.Handler
}

type apiRoute struct {
	pattern string
	perm    auth.Permission
	h       APIHandler
}

// New returns a server with defaults filled in.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.FunctionTimeout <= 0 {
		cfg.FunctionTimeout = 30 * time.Minute
	}
	if cfg.APITimeout <= 0 {
		cfg.APITimeout = 200 * time.Second
	}
	if cfg.HealthTimeout <= 0 {
		cfg.HealthTimeout = 5 * time.Second
	}
	if cfg.HealthCacheTTL <= 0 {
		cfg.HealthCacheTTL = 10 * time.Second
	}
	if cfg.MaxInvokeBody <= 0 {
		cfg.MaxInvokeBody = 1 << 20
	}
	return &Server{cfg: cfg, log: cfg.Logger, health: newHealth(cfg.Checks, cfg.HealthTimeout, cfg.HealthCacheTTL, cfg.Logger)}
}

// HandleAPI registers an authenticated route, e.g.
// s.HandleAPI("GET /api/tenants/{tenant}/byok", auth.PermRead, h). Call it
// before [Server.Install]. Patterns with {tenant} get the tenant checked
// against API.md's regex and the principal's rights.
func (s *Server) HandleAPI(pattern string, perm auth.Permission, h APIHandler) {
	s.apis = append(s.apis, apiRoute{pattern: pattern, perm: perm, h: h})
}

// HandleQueue registers the queue-triggered function name (its folder in
// functions/): the host posts each message to /{name}. A nil fn answers a
// clear 500 ("function not wired") so the host retries rather than losing
// the message.
func (s *Server) HandleQueue(name string, fn QueueFunc) {
	s.funcs = append(s.funcs, function{name: name, h: s.queue(name, fn)})
}

// HandleTimer registers the timer-triggered function name; a nil fn answers
// 500 like [Server.HandleQueue].
func (s *Server) HandleTimer(name string, fn TimerFunc) {
	s.funcs = append(s.funcs, function{name: name, h: s.timer(name, fn)})
}

// HandlePublic registers an anonymous route that serves no tenant data
// (the Settings page's static files), e.g. s.HandlePublic("GET /api/ui/", h).
func (s *Server) HandlePublic(pattern string, h http.Handler) {
	s.public = append(s.public, publicRoute{pattern: pattern, h: h})
}

type publicRoute struct {
	pattern string
	h       http.Handler
}

// Install registers every route with Go 1.22 method patterns.
func (s *Server) Install(handle func(pattern string, h http.Handler)) {
	handle("GET /{$}", http.HandlerFunc(s.ready))
	handle("GET /api/health", http.HandlerFunc(s.serveHealth))
	for _, p := range s.public {
		handle(p.pattern, p.h)
	}
	for _, f := range s.funcs {
		handle("POST /"+f.name, f.h)
	}
	for _, a := range s.apis {
		handle(a.pattern, s.api(a))
	}
}

// Handler returns a mux with every route installed, answering the
// contract's JSON error body for unknown paths (404) and methods (405).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.Install(mux.Handle)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r) // sets the path values
			return
		}
		// The mux's own 404/405 (or redirect) writes text; keep its status
		// and Allow header, answer JSON.
		rec := &statusRecorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		switch rec.status {
		case http.StatusNotFound:
			WriteJSON(w, rec.status, errcode.Body{Error: errcode.Detail{Code: errcode.NotFound, Message: "There is no such route: check the method and path."}})
		case http.StatusMethodNotAllowed:
			w.Header().Set("Allow", rec.header.Get("Allow"))
			WriteJSON(w, rec.status, errcode.Body{Error: errcode.Detail{Code: errcode.InvalidRequest, Message: "This route does not accept the method " + r.Method + ": see the Allow header."}})
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// statusRecorder captures the status and headers of the mux's fallback handlers.
type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *statusRecorder) WriteHeader(status int)      { r.status = status }

// ready answers the host's readiness probe: any response counts, keep it cheap.
func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// requestID is the host's invocation id when there is one, so handler logs
// can be joined with the host's; otherwise a random id.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Azure-Functions-InvocationId"); id != "" && len(id) <= 64 {
		return id
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
