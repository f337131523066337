// Command fakehandler is a tiny custom handler for the runner's tests. It
// reports every request it receives to the test's sink (FAKE_SINK) and
// answers as told by FAKE_* settings, so tests can assert on exactly what
// the runner sent.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// Record is what the fake reports for each request.
type Record struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Query   string              `json:"query"`
	Host    string              `json:"host"`
	Headers map[string][]string `json:"headers"`
	Chunked bool                `json:"chunked"`
	Body    string              `json:"body"`
	Env     map[string]string   `json:"env"`
	Cwd     string              `json:"cwd"`
}

func main() {
	port := os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT")
	sink := os.Getenv("FAKE_SINK")
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" && r.Method == http.MethodGet {
			w.WriteHeader(http.StatusOK)
			return
		}
		body, _ := io.ReadAll(r.Body)
		cwd, _ := os.Getwd()
		rec := Record{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Host: r.Host, Headers: r.Header,
			Chunked: len(r.TransferEncoding) > 0 && r.TransferEncoding[0] == "chunked", Body: string(body), Cwd: cwd,
			Env: map[string]string{}}
		for _, k := range []string{"FUNCTIONS_CUSTOMHANDLER_PORT", "FUNCTIONS_HTTPWORKER_PORT", "FUNCTIONS_APP_ROOT_PATH",
			"FUNCTIONS_CUSTOMHANDLER_WORKER_ID", "CUSTOM_SETTING"} {
			rec.Env[k] = os.Getenv(k)
		}
		b, _ := json.Marshal(rec)
		if resp, err := http.Post(sink, "application/json", bytes.NewReader(b)); err == nil {
			resp.Body.Close()
		}
		switch {
		case r.URL.Path == "/crash":
			os.Exit(3)
		case strings.HasPrefix(r.URL.Path, "/api/"):
			serveAPI(w, r, body)
		default:
			serveInvocation(w, r, body)
		}
	})
	if err := http.ListenAndServe("127.0.0.1:"+port, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// serveAPI answers forwarded HTTP: ?status=N sets the status, /api/redirect
// redirects, the body is echoed.
func serveAPI(w http.ResponseWriter, r *http.Request, body []byte) {
	if strings.HasSuffix(r.URL.Path, "/redirect") {
		http.Redirect(w, r, "/api/elsewhere", http.StatusFound)
		return
	}
	status := http.StatusOK
	if s, err := strconv.Atoi(r.URL.Query().Get("status")); err == nil {
		status = s
	}
	w.Header().Set("X-Echo", "yes")
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(status)
	_, _ = w.Write(append([]byte("echo:"), body...))
}

// serveInvocation answers payload-mode invocations. FAKE_FAIL_<Function>=n
// fails while the queue DequeueCount is at most n; FAKE_BAD_<Function> picks
// a malformed answer; FAKE_OUTPUTS_<Function> is the Outputs JSON.
func serveInvocation(w http.ResponseWriter, r *http.Request, body []byte) {
	fn := strings.TrimPrefix(r.URL.Path, "/")
	var p struct {
		Metadata map[string]json.RawMessage
	}
	_ = json.Unmarshal(body, &p)
	if n, err := strconv.Atoi(os.Getenv("FAKE_FAIL_" + fn)); err == nil {
		var dc string
		_ = json.Unmarshal(p.Metadata["DequeueCount"], &dc)
		if c, _ := strconv.Atoi(dc); c <= n {
			http.Error(w, "planned failure", http.StatusInternalServerError)
			return
		}
	}
	switch os.Getenv("FAKE_BAD_" + fn) {
	case "text":
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"Outputs":{}}`)) // sniffed as text/plain
		return
	case "empty":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		return
	}
	outputs := os.Getenv("FAKE_OUTPUTS_" + fn)
	if outputs == "" {
		outputs = "{}"
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(w, `{"Outputs":%s,"Logs":["fake handled %s"],"ReturnValue":null}`, outputs, fn)
}
