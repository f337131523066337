package runner

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"
)

// hopHeaders are connection-level headers a proxy must not copy.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// ServeHTTP is the runner's front door: /admin/functions/<Name> for
// on-demand runs, /<routePrefix>/... for HTTP functions, 404 otherwise.
func (r *Runner) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path == "/" {
		writeJSON(w, http.StatusOK, map[string]string{"state": "Running", "host": "byok-backup local runner"})
		return
	}
	if name, ok := strings.CutPrefix(req.URL.Path, "/admin/functions/"); ok {
		r.serveAdmin(w, req, name)
		return
	}
	prefix := "/"
	if p := r.app.Host.RoutePrefix(); p != "" {
		prefix = "/" + p + "/"
	}
	rest, ok := strings.CutPrefix(req.URL.Path, prefix)
	if !ok {
		writeError(w, http.StatusNotFound, "NotFound", "No function answers this path.")
		return
	}
	for _, rt := range r.routes {
		if _, ok := rt.match(rest); !ok {
			continue
		}
		if rt.methods != nil && !rt.methods[req.Method] {
			continue
		}
		if !rt.forward {
			writeError(w, http.StatusNotImplemented, "NotImplemented",
				"The local runner forwards only HTTP functions with exactly one httpTrigger and one http output; enable customHandler.enableForwardingHttpRequest.")
			return
		}
		r.forward(w, req, rt.function)
		return
	}
	writeError(w, http.StatusNotFound, "NotFound", "No function answers this path and method.")
}

// forward relays the request verbatim to the handler (full path with the
// route prefix, query, headers plus the host's three) and its answer back,
// without following redirects (docs/research/functions-custom-handler.md §5).
// Function keys are not checked, as Core Tools doesn't check them locally.
func (r *Runner) forward(w http.ResponseWriter, req *http.Request, function string) {
	id := newID()
	start := time.Now()
	target := r.sup.url() + req.URL.EscapedPath()
	if req.URL.RawQuery != "" {
		target += "?" + req.URL.RawQuery
	}
	var body io.Reader = req.Body
	if req.ContentLength == 0 {
		body = nil
	}
	out, err := http.NewRequestWithContext(req.Context(), req.Method, target, body)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "Internal", "The runner could not build the forwarded request.")
		return
	}
	out.ContentLength = req.ContentLength
	out.Header = req.Header.Clone()
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	out.Host = req.Host
	r.hostHeaders(out.Header, id)
	resp, err := r.client.Do(out)
	log := r.log.With("function", function, "invocationId", id, "trigger", "http", "method", req.Method, "path", req.URL.Path)
	if err != nil {
		log.Warn("invocation failed", "outcome", "failed", "err", err, "durationMs", time.Since(start).Milliseconds())
		writeError(w, http.StatusInternalServerError, "Internal", "The function's handler did not answer.")
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	for _, h := range hopHeaders {
		w.Header().Del(h)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
	log.Info("invocation succeeded", "outcome", "succeeded", "status", resp.StatusCode, "durationMs", time.Since(start).Milliseconds())
}

// serveAdmin runs a timer or queue function now, like the host's
// POST /admin/functions/<name> with body {"input": "..."}: 202 at once, the
// invocation runs in the background. For a queue function the input is the
// message text.
func (r *Runner) serveAdmin(w http.ResponseWriter, req *http.Request, name string) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "Use POST to run a function on demand.")
		return
	}
	var in struct {
		Input string `json:"input"`
	}
	if b, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20)); len(strings.TrimSpace(string(b))) > 0 {
		if err := json.Unmarshal(b, &in); err != nil {
			writeError(w, http.StatusBadRequest, "InvalidRequest", `The body must be {"input": "<text>"} or empty.`)
			return
		}
	}
	for _, t := range r.timers {
		if strings.EqualFold(t.fn.Name, name) {
			if !r.track() {
				writeError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "The runner is stopping.")
				return
			}
			go func() {
				defer r.inflight.Done()
				r.fireTimer(r.baseCtx, t, time.Now().UTC().Truncate(time.Second), "admin")
			}()
			w.WriteHeader(http.StatusAccepted)
			return
		}
	}
	for _, q := range r.queues {
		if strings.EqualFold(q.fn.Name, name) {
			if !r.track() {
				writeError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "The runner is stopping.")
				return
			}
			now := time.Now().UTC()
			m := message{id: newID(), popReceipt: "", dequeueCount: 1, inserted: now, expires: now.Add(7 * 24 * time.Hour), nextVisible: now}
			go func() {
				defer r.inflight.Done()
				_, _ = r.invoke(r.baseCtx, q.fn, "queue:admin", queuePayload(q.fn.Name, q.binding.Name, in.Input, m, time.Now()))
			}()
			w.WriteHeader(http.StatusAccepted)
			return
		}
	}
	writeError(w, http.StatusNotFound, "NotFound", "No timer or queue function has this name.")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(jsonText(v) + "\n"))
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
