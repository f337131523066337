package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/devstack/azurite"
)

// Shared by the package's tests: the fake handler binary and one Azurite.
var (
	fakeHandler string
	az          *azurite.Instance
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "runner-test-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	fakeHandler = filepath.Join(dir, "fakehandler")
	if out, err := exec.Command("go", "build", "-o", fakeHandler, "./testdata/fakehandler").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the fake handler: %v\n%s", err, out)
		return 1
	}
	return azurite.Run(m, &az)
}

// record is what the fake handler reports (testdata/fakehandler.Record).
type record struct {
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

func (r record) header(k string) string { return http.Header(r.Headers).Get(k) }

// sink collects the fake handler's reports.
type sink struct {
	url string
	ch  chan record
}

func newSink(t *testing.T) *sink {
	s := &sink{ch: make(chan record, 256)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rec record
		if err := json.NewDecoder(r.Body).Decode(&rec); err != nil {
			t.Errorf("sink: %v", err)
		}
		s.ch <- rec
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// next returns the next record for path, failing after timeout.
func (s *sink) next(t *testing.T, path string, timeout time.Duration) record {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case rec := <-s.ch:
			if rec.Path == path {
				return rec
			}
		case <-deadline:
			t.Fatalf("no request to %s within %s", path, timeout)
		}
	}
}

// none fails if a request to path arrives within d.
func (s *sink) none(t *testing.T, path string, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case rec := <-s.ch:
			if rec.Path == path {
				t.Fatalf("unexpected request to %s", path)
			}
		case <-deadline:
			return
		}
	}
}

const testHost = `{
  "version": "2.0",
  "functionTimeout": "00:01:00",
  "customHandler": {"description": {"defaultExecutablePath": "handler"}, "enableForwardingHttpRequest": true},
  "extensions": {"queues": {"maxDequeueCount": 3, "batchSize": 4, "visibilityTimeout": "00:00:00", "maxPollingInterval": "00:00:00.300"}}
}`

// newApp writes an app root with the fake handler and the given function.json files.
func newApp(t *testing.T, host string, functions map[string]string) string {
	t.Helper()
	root := t.TempDir()
	mustWrite(t, filepath.Join(root, "host.json"), host)
	for name, fj := range functions {
		mustWrite(t, filepath.Join(root, name, "function.json"), fj)
	}
	b, err := os.ReadFile(fakeHandler)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "handler"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

func mustWrite(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startRunner starts a runner on a free port with Azurite as storage.
func startRunner(t *testing.T, root string, s *sink, settings map[string]string, maxRestarts int) *Runner {
	t.Helper()
	all := map[string]string{"AzureWebJobsStorage": az.ConnectionString(), "FAKE_SINK": s.url}
	for k, v := range settings {
		all[k] = v
	}
	r, err := New(Options{Root: root, Settings: all, Addr: "127.0.0.1:0", MaxRestarts: maxRestarts,
		MinPollInterval: 50 * time.Millisecond, StopTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewJSONHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := r.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

// testWriter sends runner logs to t.Log, shown only for failing tests.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func postAdmin(t *testing.T, r *Runner, name, body string) int {
	t.Helper()
	resp, err := http.Post("http://"+r.Addr()+"/admin/functions/"+name, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
