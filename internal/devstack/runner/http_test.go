package runner

import (
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

const echoFunction = `{"bindings":[{"name":"req","type":"httpTrigger","direction":"in","authLevel":"function",
  "methods":["get","post"],"route":"echo/{id}/{rest?}"},{"name":"res","type":"http","direction":"out"}]}`

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{Timeout: 10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func do(t *testing.T, method, url, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestHTTPForwardsVerbatimAndRelaysTheAnswer(t *testing.T) {
	s := newSink(t)
	root := newApp(t, testHost, map[string]string{"Echo": echoFunction})
	r := startRunner(t, root, s, nil, 0)
	base := "http://" + r.Addr()

	resp, body := do(t, http.MethodPost, base+"/api/echo/42/extra?x=1&code=k&status=201", "hello",
		map[string]string{"X-Custom": "c1", "Authorization": "Bearer abc", "User-Agent": "curl/8", "Content-Type": "text/plain"})
	if resp.StatusCode != http.StatusCreated || body != "echo:hello" || resp.Header.Get("X-Echo") != "yes" {
		t.Errorf("answer = %d %q X-Echo=%q, want 201 echo:hello yes", resp.StatusCode, body, resp.Header.Get("X-Echo"))
	}
	rec := s.next(t, "/api/echo/42/extra", 5*time.Second)
	if rec.Method != http.MethodPost || rec.Query != "x=1&code=k&status=201" || rec.Body != "hello" {
		t.Errorf("forwarded %s %s?%s body %q", rec.Method, rec.Path, rec.Query, rec.Body)
	}
	for k, want := range map[string]string{"X-Custom": "c1", "Authorization": "Bearer abc", "Content-Type": "text/plain",
		"User-Agent": "curl/8 Azure-Functions-Host/" + hostVersion, "X-Azure-Functions-HostVersion": hostVersion} {
		if got := rec.header(k); got != want {
			t.Errorf("forwarded %s = %q, want %q", k, got, want)
		}
	}
	if !uuidRE.MatchString(rec.header("X-Azure-Functions-InvocationId")) {
		t.Errorf("invocation id = %q", rec.header("X-Azure-Functions-InvocationId"))
	}
	if rec.Host != r.Addr() {
		t.Errorf("forwarded Host = %q, want the original %q", rec.Host, r.Addr())
	}

	// Optional trailing segment omitted; handler error statuses are relayed.
	resp, _ = do(t, http.MethodGet, base+"/api/echo/7?status=503", "", nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /api/echo/7 = %d, want the handler's 503", resp.StatusCode)
	}
	if rec := s.next(t, "/api/echo/7", 5*time.Second); rec.Body != "" {
		t.Errorf("GET forwarded a body %q", rec.Body)
	}

	// Redirects are relayed, not followed.
	resp, _ = do(t, http.MethodGet, base+"/api/echo/1/redirect", "", nil)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/api/elsewhere" {
		t.Errorf("redirect = %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	s.next(t, "/api/echo/1/redirect", 5*time.Second)

	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/api/echo"},          // required {id} missing
		{http.MethodGet, "/api/echo/1/2/3"},    // too many segments
		{http.MethodDelete, "/api/echo/1"},     // method not declared
		{http.MethodGet, "/api/nope"},          // no such route
		{http.MethodGet, "/echo/1"},            // no route prefix
		{http.MethodGet, "/api/elsewhere/x/y"}, // the redirect target doesn't exist
	} {
		resp, _ := do(t, c.method, base+c.path, "", nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s = %d, want 404", c.method, c.path, resp.StatusCode)
		}
	}
	s.none(t, "/api/echo", 300*time.Millisecond)
}

func TestHTTPDefaultRouteIsTheFunctionNameAndAnyMethod(t *testing.T) {
	s := newSink(t)
	root := newApp(t, testHost, map[string]string{
		"Health": `{"bindings":[{"name":"req","type":"httpTrigger","direction":"in","authLevel":"anonymous"},{"name":"res","type":"http","direction":"out"}]}`,
	})
	r := startRunner(t, root, s, nil, 0)
	for _, m := range []string{http.MethodGet, http.MethodPut} {
		resp, _ := do(t, m, "http://"+r.Addr()+"/api/health", "", nil) // case-insensitive literal
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s /api/health = %d", m, resp.StatusCode)
		}
		if rec := s.next(t, "/api/health", 5*time.Second); rec.Method != m {
			t.Errorf("method = %s, want %s", rec.Method, m)
		}
	}
}

func TestHandlerIsRestartedAfterACrashThenGivenUpOn(t *testing.T) {
	s := newSink(t)
	root := newApp(t, testHost, map[string]string{"Daily": dailyTimer})
	r := startRunner(t, root, s, nil, 1)
	crash := func() {
		resp, err := http.Post(r.sup.url()+"/crash", "application/json", nil)
		if err == nil { // the handler dies mid-request
			resp.Body.Close()
		}
		s.next(t, "/crash", 5*time.Second)
	}
	crash()
	// After the restart the handler answers invocations again.
	eventually(t, "an invocation after the restart", 15*time.Second, func() bool {
		postAdmin(t, r, "Daily", "")
		select {
		case rec := <-s.ch:
			return rec.Path == "/Daily"
		case <-time.After(time.Second):
			return false
		}
	})
	crash()
	select {
	case <-r.Failed():
	case <-time.After(15 * time.Second):
		t.Fatal("runner did not give up after MaxRestarts crashes")
	}
}

func TestHandlerPIDFollowsTheHandlerAcrossAKill(t *testing.T) {
	s := newSink(t)
	root := newApp(t, testHost, map[string]string{"Daily": dailyTimer})
	r := startRunner(t, root, s, nil, 2)
	first := r.HandlerPID()
	if first == 0 {
		t.Fatal("HandlerPID = 0 while the handler runs")
	}
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The restarted handler has its own pid and answers invocations.
	eventually(t, "a new handler pid", 15*time.Second, func() bool {
		p := r.HandlerPID()
		return p != 0 && p != first
	})
	eventually(t, "an invocation after the kill", 15*time.Second, func() bool {
		postAdmin(t, r, "Daily", "")
		select {
		case rec := <-s.ch:
			return rec.Path == "/Daily"
		case <-time.After(time.Second):
			return false
		}
	})
}
