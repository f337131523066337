package invoke

import (
	"encoding/json"
	"net/http"
)

// Response is the body the host reads after a payload-mode invocation
// (HttpScriptInvocationResult). The host needs a non-empty JSON object with
// Content-Type application/json, or the invocation fails or never completes.
type Response struct {
	Outputs     map[string]any `json:"Outputs"`
	Logs        []string       `json:"Logs"`
	ReturnValue any            `json:"ReturnValue"`
}

// Write sends resp with status. Nil Outputs and Logs are sent as {} and []
// so the body is always a complete object. A non-2xx status fails the
// invocation, which makes the host retry a queue message; the host then
// discards the body, Logs included, so callers log failures themselves.
func Write(w http.ResponseWriter, status int, resp Response) error {
	if resp.Outputs == nil {
		resp.Outputs = map[string]any{}
	}
	if resp.Logs == nil {
		resp.Logs = []string{}
	}
	b, err := json.Marshal(resp)
	if err != nil {
		// Outputs the caller built can't be encoded: fail the invocation
		// with a body that is still valid.
		status, b = http.StatusInternalServerError, []byte(`{"Outputs":{},"Logs":["invoke: response could not be encoded"],"ReturnValue":null}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, werr := w.Write(b)
	if err != nil {
		return err
	}
	return werr
}
