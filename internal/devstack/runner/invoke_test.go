package runner

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/twinit/byok-backup/internal/devstack/runner/approot"
)

// TestInvokeValidatesAnswersLikeTheHost drives invoke against a fake
// handler answering each way the host rejects (§4.1, §4.5).
func TestInvokeValidatesAnswersLikeTheHost(t *testing.T) {
	cases := []struct {
		name   string
		answer func(w http.ResponseWriter)
		status int // 0: success expected
	}{
		{"ok", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"Outputs":{},"Logs":["a"],"ReturnValue":null}`))
		}, 0},
		{"text/json accepted", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/json; charset=utf-8")
			w.Write([]byte(`{}`))
		}, 0},
		{"non-2xx", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte(`{"Logs":["lost"]}`))
		}, 500},
		{"sniffed text/plain", func(w http.ResponseWriter) { w.Write([]byte(`{"Outputs":{}}`)) }, 200},
		{"empty body", func(w http.ResponseWriter) { w.Header().Set("Content-Type", "application/json") }, 200},
		{"null", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`null`))
		}, 200},
		{"broken JSON", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"Outputs":`))
		}, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { c.answer(w) }))
			defer srv.Close()
			r := &Runner{log: discardLogger(), client: srv.Client(), hostVersion: hostVersion,
				sup: &supervisor{port: srv.Listener.Addr().(*net.TCPAddr).Port}}
			_, err := r.invoke(context.Background(), approot.Function{Name: "F"}, "test", payload{Data: map[string]any{}, Metadata: map[string]any{}})
			if c.status == 0 {
				if err != nil {
					t.Fatalf("invoke: %v", err)
				}
				return
			}
			var ie *InvocationError
			if !errors.As(err, &ie) || ie.Status != c.status || ie.Function != "F" {
				t.Fatalf("invoke = %v, want InvocationError with status %d", err, c.status)
			}
		})
	}
	// An unreachable handler is an invocation error without a status.
	r := &Runner{log: discardLogger(), client: http.DefaultClient, hostVersion: hostVersion, sup: &supervisor{port: 1}}
	var ie *InvocationError
	if _, err := r.invoke(context.Background(), approot.Function{Name: "F"}, "test", payload{}); !errors.As(err, &ie) || ie.Status != 0 {
		t.Fatalf("invoke on a closed port = %v", err)
	}
}

func TestQueueOutputMessages(t *testing.T) {
	cases := map[string][]string{
		`["a","b"]`:       {"a", "b"},
		`[{"x":1},2]`:     {`{"x":1}`, "2"},
		`"[\"p\",\"q\"]"`: {"p", "q"},
		`"plain text"`:    {"plain text"},
		`{"tenant":"a"}`:  {`{"tenant":"a"}`},
		`7`:               {"7"},
	}
	for in, want := range cases {
		got, err := queueOutputMessages([]byte(in))
		if err != nil || len(got) != len(want) {
			t.Errorf("queueOutputMessages(%s) = %q, %v; want %q", in, got, err, want)
			continue
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("queueOutputMessages(%s)[%d] = %q, want %q", in, i, got[i], want[i])
			}
		}
	}
}

func FuzzQueueOutputMessages(f *testing.F) {
	for _, s := range []string{`["a","b"]`, `"[\"p\"]"`, `"x"`, `{"a":1}`, `7`, `[`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, err := queueOutputMessages(b)
		if err == nil && msgs == nil {
			t.Fatalf("no messages and no error for %q", b)
		}
	})
}

func FuzzDecodeMessage(f *testing.F) {
	for _, s := range []string{"aGVsbG8hIQ==", "not base64!", "", "eyJhIjoxfQ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		text, err := decodeMessage(raw, "base64")
		if err != nil {
			if !errors.Is(err, ErrNotBase64) {
				t.Fatalf("unexpected error type: %v", err)
			}
			return
		}
		// Whatever decodes must round-trip through the output encoding.
		again, err := decodeMessage(encodeMessage(text, "base64"), "base64")
		if err != nil || again != text {
			t.Fatalf("round trip of %q: %q, %v", raw, again, err)
		}
		if got, _ := decodeMessage(raw, "none"); got != raw {
			t.Fatalf("encoding none changed %q", raw)
		}
	})
}
