package runner

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/twinit/byok-backup/internal/devstack/runner/approot"
)

// payload is the body the host POSTs to /<FunctionName> for non-forwarded
// invocations (docs/research/functions-custom-handler.md §3.2).
type payload struct {
	Data     map[string]any `json:"Data"`
	Metadata map[string]any `json:"Metadata"`
}

// result is the handler's answer (§4.1).
type result struct {
	Outputs     map[string]json.RawMessage `json:"Outputs"`
	Logs        []string                   `json:"Logs"`
	ReturnValue json.RawMessage            `json:"ReturnValue"`
}

// InvocationError reports a failed invocation: the handler was unreachable,
// answered non-2xx, or answered something the host can't read.
type InvocationError struct {
	Function string
	Status   int // 0 when the handler was not reached
	Err      error
}

func (e *InvocationError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("invocation of %s failed: handler answered %d: %v", e.Function, e.Status, e.Err)
	}
	return fmt.Sprintf("invocation of %s failed: %v", e.Function, e.Err)
}

func (e *InvocationError) Unwrap() error { return e.Err }

// .NET-style timestamps, as the host serializes them.
const (
	netTime     = "2006-01-02T15:04:05.0000000-07:00" // DateTime with offset (timer status)
	netUTC      = "2006-01-02T15:04:05.0000000Z"      // sys.UtcNow
	netOffset   = "2006-01-02T15:04:05-07:00"         // DateTimeOffset.Parse(x.ToString()): no fraction
	hostVersion = "4.1037.0"
)

// newID returns a random (version 4) UUID.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// sysMetadata is Metadata.sys.
func sysMetadata(fn string, now time.Time) map[string]any {
	return map[string]any{"MethodName": fn, "UtcNow": now.UTC().Format(netUTC), "RandGuid": newID()}
}

// jsonText encodes v as JSON the way Newtonsoft does (no HTML escaping).
func jsonText(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return strings.TrimSuffix(b.String(), "\n")
}

// hostString is a string, number or bool value as the host puts it into
// Data or Metadata: JSON-encoded, then carried as a JSON string (§3.2).
func hostString(v any) string { return jsonText(v) }

// invoke POSTs one payload-mode invocation and validates the answer as the
// host does (§4.1, §4.2). It returns the handler's result.
func (r *Runner) invoke(ctx context.Context, fn approot.Function, trigger string, p payload) (res *result, err error) {
	id := newID()
	start := time.Now()
	defer func() {
		attrs := []any{"function", fn.Name, "invocationId", id, "trigger", trigger,
			"durationMs", time.Since(start).Milliseconds()}
		if err != nil {
			r.log.Warn("invocation failed", append(attrs, "outcome", "failed", "err", err)...)
		} else {
			r.log.Info("invocation succeeded", append(attrs, "outcome", "succeeded")...)
		}
	}()
	body := jsonText(p)
	// No Content-Length: the host streams the body, so the handler sees
	// Transfer-Encoding: chunked (§3.1).
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.sup.url()+"/"+fn.Name,
		io.NopCloser(strings.NewReader(body)))
	if err != nil {
		return nil, &InvocationError{Function: fn.Name, Err: err}
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	r.hostHeaders(req.Header, id)
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, &InvocationError{Function: fn.Name, Err: fmt.Errorf("handler unreachable: %w", err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 100<<20))
	if err != nil {
		return nil, &InvocationError{Function: fn.Name, Status: resp.StatusCode, Err: fmt.Errorf("failed to read the answer: %w", err)}
	}
	// The host checks the status before reading the body, so Logs of a
	// failed invocation are lost there (§4.5).
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &InvocationError{Function: fn.Name, Status: resp.StatusCode, Err: errors.New("non-2xx answer; the host discards its body")}
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "application/json" && mt != "text/json" {
		return nil, &InvocationError{Function: fn.Name, Status: resp.StatusCode,
			Err: fmt.Errorf("Content-Type is %q; the host needs application/json", resp.Header.Get("Content-Type"))}
	}
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, &InvocationError{Function: fn.Name, Status: resp.StatusCode,
			Err: errors.New("the answer must be a JSON object; an empty body or null never completes the invocation on the host")}
	}
	res = &result{}
	if err := json.Unmarshal(trimmed, res); err != nil {
		return nil, &InvocationError{Function: fn.Name, Status: resp.StatusCode, Err: fmt.Errorf("invalid JSON answer: %w", err)}
	}
	for _, l := range res.Logs {
		r.log.Info(l, "function", fn.Name, "invocationId", id, "source", "handler")
	}
	if err := r.writeOutputs(ctx, fn, res); err != nil {
		return nil, &InvocationError{Function: fn.Name, Status: resp.StatusCode, Err: err}
	}
	return res, nil
}

// hostHeaders adds the headers the host sets on every call to the handler.
func (r *Runner) hostHeaders(h http.Header, invocationID string) {
	h.Set("X-Azure-Functions-HostVersion", r.hostVersion)
	h.Set("X-Azure-Functions-InvocationId", invocationID)
	ua := "Azure-Functions-Host/" + r.hostVersion
	if prev := h.Get("User-Agent"); prev != "" {
		ua = prev + " " + ua
	}
	h.Set("User-Agent", ua)
}

// writeOutputs maps Outputs (and ReturnValue to $return) onto the function's
// declared queue output bindings; undeclared keys are ignored like the host
// ignores them (§4.2, §4.4).
func (r *Runner) writeOutputs(ctx context.Context, fn approot.Function, res *result) error {
	for _, b := range fn.Bindings {
		if !strings.EqualFold(b.Direction, approot.DirectionOut) || !strings.EqualFold(b.Type, "queue") {
			continue
		}
		var v json.RawMessage
		if b.Name == "$return" {
			v = res.ReturnValue
		} else {
			for k, val := range res.Outputs {
				if strings.EqualFold(k, b.Name) {
					v = val
				}
			}
		}
		if len(v) == 0 || string(v) == "null" {
			continue
		}
		msgs, err := queueOutputMessages(v)
		if err != nil {
			return fmt.Errorf("output %s: %w", b.Name, err)
		}
		if err := r.enqueue(ctx, b, msgs); err != nil {
			return fmt.Errorf("output %s: %w", b.Name, err)
		}
	}
	return nil
}

// queueOutputMessages splits a queue output value into messages: an array
// gives one per element (strings raw), a string holding a JSON array is
// split too, anything else is one message.
func queueOutputMessages(v json.RawMessage) ([]string, error) {
	var arr []json.RawMessage
	if err := json.Unmarshal(v, &arr); err == nil {
		return rawMessages(arr), nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		if err := json.Unmarshal([]byte(s), &arr); err == nil {
			return rawMessages(arr), nil
		}
		return []string{s}, nil
	}
	if !json.Valid(v) {
		return nil, errors.New("not valid JSON")
	}
	return []string{string(v)}, nil
}

func rawMessages(arr []json.RawMessage) []string {
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		var s string
		if json.Unmarshal(e, &s) == nil {
			out = append(out, s)
		} else {
			out = append(out, string(e))
		}
	}
	return out
}
