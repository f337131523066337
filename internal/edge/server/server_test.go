package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/devstack/devauth"
	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/edge/invoke"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/testing/logtest"
)

// fakeAuth accepts "Bearer <tenant>:<role>[,<role>]" and refuses anything else.
type fakeAuth struct{}

func (fakeAuth) Authenticate(r *http.Request) (auth.Principal, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	tenant, roles, ok2 := strings.Cut(tok, ":")
	if !ok || !ok2 {
		return auth.Principal{}, errcode.Wrap(auth.ErrUnauthenticated, errcode.Unauthorized, "no token")
	}
	return auth.Principal{Subject: "u", Tenant: tenant, Roles: strings.Split(roles, ",")}, nil
}

func do(t *testing.T, h http.Handler, method, path, authz string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	if authz != "" {
		r.Header.Set("Authorization", authz)
	}
	if body != nil {
		r.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type = %q, want application/json", method, path, ct)
	}
	if !json.Valid(rec.Body.Bytes()) {
		t.Errorf("%s %s: body is not JSON: %q", method, path, rec.Body.String())
	}
	return rec
}

func errorBody(t *testing.T, rec *httptest.ResponseRecorder) errcode.Detail {
	t.Helper()
	var raw map[string]map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatalf("error body %q: %v", rec.Body.String(), err)
	}
	if len(raw) != 1 || len(raw["error"]) != 2 {
		t.Fatalf("error body shape %q, want {\"error\":{\"code\",\"message\"}}", rec.Body.String())
	}
	return errcode.Detail{Code: errcode.Code(raw["error"]["code"]), Message: raw["error"]["message"]}
}

func testdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "invoke", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadiness(t *testing.T) {
	h := New(Config{}).Handler()
	rec := do(t, h, "GET", "/", "", nil)
	if rec.Code != 200 {
		t.Fatalf("GET / = %d", rec.Code)
	}
}

// A public route is served without a token (the Settings page's files),
// while an API route beside it still refuses a caller without one.
func TestPublicRouteIsAnonymous(t *testing.T) {
	s := New(Config{})
	s.HandlePublic("GET /api/ui/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("page"))
	}))
	h := s.Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/ui/app.js", nil))
	if rec.Code != 200 || rec.Body.String() != "page" {
		t.Fatalf("GET /api/ui/app.js = %d %s", rec.Code, rec.Body)
	}
	if rec := do(t, h, "POST", "/api/ui/", "", nil); rec.Code != 405 {
		t.Fatalf("POST /api/ui/ = %d", rec.Code)
	}
}

func TestNotFoundAndMethod(t *testing.T) {
	s := New(Config{})
	s.HandleQueue("BackupWorker", nil)
	h := s.Handler()
	if rec := do(t, h, "GET", "/nope", "", nil); rec.Code != 404 || errorBody(t, rec).Code != errcode.NotFound {
		t.Errorf("GET /nope = %d %s", rec.Code, rec.Body)
	}
	rec := do(t, h, "DELETE", "/api/health", "", nil)
	if rec.Code != 405 || errorBody(t, rec).Code != errcode.InvalidRequest || !strings.Contains(rec.Header().Get("Allow"), "GET") {
		t.Errorf("DELETE /api/health = %d %s Allow=%q", rec.Code, rec.Body, rec.Header().Get("Allow"))
	}
	if rec := do(t, h, "GET", "/BackupWorker", "", nil); rec.Code != 405 {
		t.Errorf("GET /BackupWorker = %d", rec.Code)
	}
}

func TestHealth(t *testing.T) {
	var storageCalls atomic.Int32
	secret := "AccountKey=sekrit;https://kv.vault.azure.net/keys/k"
	log, logs := logtest.New()
	s := New(Config{
		Logger: log,
		Checks: []NamedCheck{
			{"storage", CheckFunc(func(ctx context.Context) error { storageCalls.Add(1); return nil })},
			{"platformKey", CheckFunc(func(ctx context.Context) error { return errors.New(secret) })},
			{"slow", CheckFunc(func(ctx context.Context) error { time.Sleep(time.Second); return nil })},
		},
		HealthTimeout:  50 * time.Millisecond,
		HealthCacheTTL: time.Hour,
	})
	h := s.Handler()
	// Health is anonymous: no Authorization header.
	rec := do(t, h, "GET", "/api/health", "", nil)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503", rec.Code)
	}
	var rep healthReport
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	want := healthReport{Status: "degraded", Checks: map[string]string{"storage": "ok", "platformKey": "failed", "slow": "timeout"}}
	if fmt.Sprint(rep) != fmt.Sprint(want) {
		t.Errorf("report = %+v, want %+v", rep, want)
	}
	if strings.Contains(rec.Body.String(), "sekrit") || strings.Contains(rec.Body.String(), "vault") {
		t.Errorf("health leaks error text: %s", rec.Body)
	}
	if !strings.Contains(logs.String(), "health check failed") {
		t.Error("failed check not logged")
	}
	// Cached: a second probe runs no check.
	do(t, h, "GET", "/api/health", "", nil)
	if n := storageCalls.Load(); n != 1 {
		t.Errorf("storage checked %d times, want 1 (cached)", n)
	}

	ok := New(Config{Checks: []NamedCheck{{"storage", CheckFunc(func(context.Context) error { return nil })}}, HealthCacheTTL: time.Nanosecond}).Handler()
	rec = do(t, ok, "GET", "/api/health", "", nil)
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"status":"ok","checks":{"storage":"ok"}}` {
		t.Errorf("healthy = %d %s", rec.Code, rec.Body)
	}
}

func TestPayloadDispatch(t *testing.T) {
	var gotQueue *invoke.QueueRequest
	var gotTimer *invoke.TimerRequest
	var deadline time.Duration
	log, logs := logtest.New()
	s := New(Config{Logger: log, FunctionTimeout: 10 * time.Minute})
	s.HandleQueue("BackupWorker", func(ctx context.Context, req *invoke.QueueRequest) error {
		gotQueue = req
		d, _ := ctx.Deadline()
		deadline = time.Until(d)
		return nil
	})
	s.HandleQueue("RestoreWorker", func(ctx context.Context, req *invoke.QueueRequest) error {
		return fmt.Errorf("restore failed: %w", errors.New("RESPONSE 500: secret Azure body"))
	})
	s.HandleTimer("BackupScheduler", func(ctx context.Context, req *invoke.TimerRequest) error { gotTimer = req; return nil })
	s.HandleTimer("ByokMonitor", nil)
	h := s.Handler()

	rec := do(t, h, "POST", "/BackupWorker", "", testdata(t, "queue_job_double.json"))
	if rec.Code != 200 {
		t.Fatalf("BackupWorker = %d %s", rec.Code, rec.Body)
	}
	var resp map[string]json.RawMessage
	_ = json.Unmarshal(rec.Body.Bytes(), &resp)
	if string(resp["Outputs"]) != "{}" || string(resp["ReturnValue"]) != "null" || len(resp["Logs"]) == 0 {
		t.Errorf("response = %s", rec.Body)
	}
	if gotQueue == nil || !strings.Contains(string(gotQueue.Message.Text), `"backupId":"01JMB7Q5ZK3V8Y2W4T6R9P0N1M"`) || gotQueue.Message.DequeueCount != 3 {
		t.Fatalf("queue request = %+v", gotQueue)
	}
	if deadline <= 8*time.Minute || deadline > 10*time.Minute {
		t.Errorf("invocation deadline %v, want below the 10m function timeout", deadline)
	}

	rec = do(t, h, "POST", "/BackupScheduler", "", testdata(t, "timer_first_run.json"))
	if rec.Code != 200 || gotTimer == nil || gotTimer.Sys.MethodName != "BackupScheduler" {
		t.Fatalf("BackupScheduler = %d %+v", rec.Code, gotTimer)
	}

	// A failing queue handler fails the invocation (non-2xx) so the host retries.
	rec = do(t, h, "POST", "/RestoreWorker", "", testdata(t, "queue_job_single_doc.json"))
	if rec.Code != 500 {
		t.Fatalf("failing RestoreWorker = %d, want 500", rec.Code)
	}
	if strings.Contains(rec.Body.String(), "secret Azure body") {
		t.Errorf("response leaks the cause: %s", rec.Body)
	}
	if !strings.Contains(logs.String(), "secret Azure body") || !strings.Contains(logs.String(), `"function":"RestoreWorker"`) {
		t.Errorf("cause not logged: %s", logs)
	}

	// Not wired → 500 with a clear log line.
	rec = do(t, h, "POST", "/ByokMonitor", "", testdata(t, "timer_no_monitor.json"))
	if rec.Code != 500 || !strings.Contains(logs.String(), "function not wired") {
		t.Fatalf("unwired ByokMonitor = %d", rec.Code)
	}

	// Malformed payload → non-2xx.
	rec = do(t, h, "POST", "/BackupWorker", "", []byte(`{"Data":`))
	if rec.Code != 400 {
		t.Fatalf("malformed = %d", rec.Code)
	}
	// Too large → non-2xx.
	bigSrv := New(Config{MaxInvokeBody: 16})
	bigSrv.HandleQueue("BackupWorker", func(context.Context, *invoke.QueueRequest) error { return nil })
	big := bigSrv.Handler()
	if rec := do(t, big, "POST", "/BackupWorker", "", testdata(t, "queue_captured.json")); rec.Code != 400 {
		t.Fatalf("oversized = %d", rec.Code)
	}
}

func TestAPIWithVerifier(t *testing.T) {
	iss := devauth.TestStart(t)
	v, err := auth.NewVerifier(t.Context(), auth.VerifierOptions{JWKSURL: iss.JWKSURL(), Issuer: iss.IssuerURL(), Audience: iss.Audience()})
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Auth: v})
	var got auth.Principal
	s.HandleAPI("GET /api/tenants/{tenant}/byok", auth.PermRead, func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		got = p
		WriteJSON(w, 200, map[string]string{"tenant": r.PathValue("tenant")})
		return nil
	})
	s.HandleAPI("PUT /api/tenants/{tenant}/byok", auth.PermAdmin, func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		WriteJSON(w, 200, map[string]string{})
		return nil
	})
	h := s.Handler()
	tok := func(tenant string, roles ...string) string {
		s, err := iss.Token(tenant, roles...)
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + s
	}
	tests := []struct {
		name, method, path, authz string
		status                    int
		code                      errcode.Code
	}{
		{"no token", "GET", "/api/tenants/acme/byok", "", 401, errcode.Unauthorized},
		{"garbage token", "GET", "/api/tenants/acme/byok", "Bearer x.y.z", 401, errcode.Unauthorized},
		{"wrong tenant", "GET", "/api/tenants/acme/byok", tok("other", auth.RoleRead), 403, errcode.Forbidden},
		{"missing role", "PUT", "/api/tenants/acme/byok", tok("acme", auth.RoleRead), 403, errcode.Forbidden},
		{"bad tenant id", "GET", "/api/tenants/Acme_1/byok", tok("acme", auth.RoleRead), 400, errcode.InvalidRequest},
		{"ok", "GET", "/api/tenants/acme/byok", tok("acme", auth.RoleRead), 200, ""},
		{"admin put", "PUT", "/api/tenants/acme/byok", tok("acme", auth.RoleAdmin), 200, ""},
		{"platform operator cross-tenant", "PUT", "/api/tenants/zeta/byok", tok("acme", auth.RolePlatformOperator), 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(t, h, tt.method, tt.path, tt.authz, nil)
			if rec.Code != tt.status {
				t.Fatalf("status = %d %s, want %d", rec.Code, rec.Body, tt.status)
			}
			if tt.code != "" && errorBody(t, rec).Code != tt.code {
				t.Errorf("code = %s, want %s", errorBody(t, rec).Code, tt.code)
			}
			if wa := rec.Header().Get("WWW-Authenticate"); (tt.status == 401) != strings.HasPrefix(wa, "Bearer") {
				t.Errorf("WWW-Authenticate = %q on %d", wa, tt.status)
			}
		})
	}
	if got.Tenant != "acme" || got.Subject != "dev-user@acme" {
		t.Errorf("principal passed to the handler = %+v", got)
	}
}

func TestErrorTable(t *testing.T) {
	// azcore.ResponseError.Error() embeds the whole service response; this
	// stands in for it.
	azureText := "PUT https://contoso-kv.vault.azure.net/keys/k/wrapkey\nRESPONSE 403: 403 Forbidden\nERROR CODE: Forbidden\n{\"error\":{\"code\":\"Forbidden\",\"message\":\"Caller oid=123 secret\"}}"
	azErr := errors.New(azureText)
	codes := []errcode.Code{
		errcode.InvalidRequest, errcode.Unauthorized, errcode.Forbidden, errcode.NotFound, errcode.BackupNotFound,
		errcode.Conflict, errcode.KeyValidationFailed, errcode.Throttled, errcode.Internal, errcode.ServiceUnavailable,
		errcode.KeyVaultUnreachable, errcode.KeyVaultAuthFailed, errcode.KeyNotFound, errcode.KeyDisabled,
		errcode.KeyAccessDenied, errcode.KeyOperationNotPermitted, errcode.UnsupportedKeyType,
		errcode.CustomerKeyUnavailable, errcode.IntegrityCheckFailed, errcode.BackupIncomplete,
	}
	type tc struct {
		name        string
		err         error
		status      int
		code        errcode.Code
		wantMessage string
	}
	var tests []tc
	for _, c := range codes {
		msg := "Cause for " + string(c) + ": do the fix."
		want := msg
		if c == errcode.Internal {
			_, want = errcode.Public(errcode.New(errcode.Internal, ""))
		}
		tests = append(tests, tc{string(c), fmt.Errorf("step: %w", errcode.Wrap(azErr, c, "%s", msg)), errcode.Status(c), c, want})
	}
	_, generic := errcode.Public(errors.New("x"))
	tests = append(tests,
		tc{"unknown error", azErr, 500, errcode.Internal, generic},
		tc{"wrapped unknown", fmt.Errorf("failed to wrap data key: %w", azErr), 500, errcode.Internal, generic},
	)
	log, logs := logtest.New()
	s := New(Config{Logger: log, Auth: fakeAuth{}})
	var current error
	s.HandleAPI("POST /api/tenants/{tenant}/backups", auth.PermOperate, func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		return current
	})
	h := s.Handler()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			current = tt.err
			r := httptest.NewRequest("POST", "/api/tenants/acme/backups", nil)
			r.Header.Set("Authorization", "Bearer acme:backup.operator")
			r.Header.Set("X-Azure-Functions-InvocationId", "inv-"+tt.name)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != tt.status {
				t.Errorf("status = %d, want %d", rec.Code, tt.status)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			d := errorBody(t, rec)
			if d.Code != tt.code || d.Message != tt.wantMessage {
				t.Errorf("body = %+v, want %s %q", d, tt.code, tt.wantMessage)
			}
			for _, leak := range []string{"RESPONSE", "oid=123", "vault.azure.net", "step:"} {
				if strings.Contains(rec.Body.String(), leak) {
					t.Errorf("body leaks %q: %s", leak, rec.Body)
				}
			}
			if rec.Header().Get("X-Request-Id") != "inv-"+tt.name {
				t.Errorf("X-Request-Id = %q", rec.Header().Get("X-Request-Id"))
			}
			if tt.status >= 500 && !strings.Contains(logs.String(), `"requestId":"inv-`+tt.name+`"`) {
				t.Errorf("5xx cause not logged with the request id")
			}
		})
	}
}

func TestAPIFailsClosedWithoutAuth(t *testing.T) {
	s := New(Config{})
	called := false
	s.HandleAPI("GET /api/tenants/{tenant}/byok", auth.PermRead, func(http.ResponseWriter, *http.Request, auth.Principal) error {
		called = true
		return nil
	})
	if rec := do(t, s.Handler(), "GET", "/api/tenants/acme/byok", "Bearer acme:byok.read", nil); rec.Code != 500 || called {
		t.Fatalf("status %d, called %v", rec.Code, called)
	}
}

func TestAPIWithoutTenantNeedsPlatformOperator(t *testing.T) {
	s := New(Config{Auth: fakeAuth{}})
	s.HandleAPI("GET /api/tenants", auth.PermRead, func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		WriteJSON(w, 200, []string{})
		return nil
	})
	h := s.Handler()
	if rec := do(t, h, "GET", "/api/tenants", "Bearer acme:byok.read", nil); rec.Code != 403 {
		t.Errorf("tenant reader = %d", rec.Code)
	}
	if rec := do(t, h, "GET", "/api/tenants", "Bearer :platform.operator", nil); rec.Code != 200 {
		t.Errorf("platform operator = %d", rec.Code)
	}
}

func TestDecodeJSON(t *testing.T) {
	type body struct {
		KeyName string `json:"keyName"`
		Pin     bool   `json:"pin"`
	}
	tests := []struct {
		name, ct, body string
		ok, empty      bool
	}{
		{"ok", "application/json", `{"keyName":"k","pin":true}`, true, false},
		{"ok with charset", "application/json; charset=utf-8", `{"keyName":"k"}`, true, false},
		{"empty", "", ``, false, true},
		{"whitespace", "application/json", "  \n", false, true},
		{"wrong content type", "text/plain", `{"keyName":"k"}`, false, false},
		{"no content type", "", `{"keyName":"k"}`, false, false},
		{"unknown field", "application/json", `{"keyName":"k","extra":1}`, false, false},
		{"wrong type", "application/json", `{"keyName":5}`, false, false},
		{"malformed", "application/json", `{"keyName":`, false, false},
		{"two values", "application/json", `{} {}`, false, false},
		{"too large", "application/json", `{"keyName":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("PUT", "/x", strings.NewReader(tt.body))
			if tt.ct != "" {
				r.Header.Set("Content-Type", tt.ct)
			}
			var b body
			err := DecodeJSON(r, &b)
			if tt.ok {
				if err != nil || b.KeyName != "k" {
					t.Fatalf("DecodeJSON = %v, %+v", err, b)
				}
				return
			}
			if errcode.CodeOf(err) != errcode.InvalidRequest {
				t.Fatalf("err = %v, want InvalidRequest", err)
			}
			if errors.Is(err, ErrEmptyBody) != tt.empty {
				t.Errorf("ErrEmptyBody = %v, want %v", errors.Is(err, ErrEmptyBody), tt.empty)
			}
			if _, msg := errcode.Public(err); strings.Contains(msg, strings.Repeat("a", 100)) {
				t.Errorf("message echoes the body")
			}
		})
	}
}

func TestGracefulDrain(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	var handlerCtxErr atomic.Value
	s := New(Config{})
	s.HandleQueue("BackupWorker", func(ctx context.Context, req *invoke.QueueRequest) error {
		close(started)
		<-release
		handlerCtxErr.Store(fmt.Sprint(ctx.Err()))
		return nil
	})
	ln, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- Run(ctx, ln, s.Handler(), RunOptions{DrainTimeout: 10 * time.Second}) }()

	respc := make(chan *http.Response, 1)
	go func() {
		resp, err := http.Post("http://"+ln.Addr().String()+"/BackupWorker", "application/json", bytes.NewReader(testdata(t, "queue_captured.json")))
		if err != nil {
			t.Error(err)
			close(respc)
			return
		}
		respc <- resp
	}()
	<-started
	stop() // SIGTERM arrives while the invocation runs
	select {
	case err := <-runErr:
		t.Fatalf("Run returned before the in-flight invocation finished: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	// New connections are refused once shutdown began.
	if _, err := http.Get("http://" + ln.Addr().String() + "/"); err == nil {
		t.Error("server accepted a new request during drain")
	}
	close(release)
	resp := <-respc
	if resp == nil {
		t.Fatal("no response")
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("in-flight invocation = %d %s", resp.StatusCode, b)
	}
	if err := <-runErr; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got := handlerCtxErr.Load(); got != "<nil>" {
		t.Errorf("handler context was cancelled during drain: %v", got)
	}
}

func TestHTTPServerTimeouts(t *testing.T) {
	srv := NewHTTPServer(context.Background(), http.NotFoundHandler(), RunOptions{FunctionTimeout: 30 * time.Minute})
	// The host waits functionTimeout + 1 min; the server must wait longer.
	if srv.WriteTimeout <= 31*time.Minute || srv.ReadTimeout <= 31*time.Minute {
		t.Errorf("read/write timeouts %v/%v do not exceed functionTimeout + 1m", srv.ReadTimeout, srv.WriteTimeout)
	}
	if srv.ReadHeaderTimeout == 0 || srv.ReadHeaderTimeout > time.Minute || srv.IdleTimeout == 0 {
		t.Errorf("header/idle timeouts %v/%v", srv.ReadHeaderTimeout, srv.IdleTimeout)
	}
	short := NewHTTPServer(context.Background(), http.NotFoundHandler(), RunOptions{FunctionTimeout: 5 * time.Minute})
	if short.WriteTimeout != 7*time.Minute {
		t.Errorf("WriteTimeout = %v for a 5m function timeout", short.WriteTimeout)
	}
}
