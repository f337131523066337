package approot

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func write(t *testing.T, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

const hostJSON = `{"version":"2.0","functionTimeout":"00:10:00",
 "customHandler":{"description":{"defaultExecutablePath":"handler"},"enableForwardingHttpRequest":true},
 "extensions":{"queues":{"maxDequeueCount":3,"batchSize":4,"visibilityTimeout":"00:00:02"}}}`

func TestLoadDiscoversOnlyTopLevelFunctionFolders(t *testing.T) {
	root := t.TempDir()
	write(t, root, "host.json", hostJSON)
	write(t, root, "Tick/function.json", `{"bindings":[{"name":"myTimer","type":"timerTrigger","direction":"in","schedule":"%S%"}]}`)
	write(t, root, "Http/function.json", `{"bindings":[{"name":"req","type":"httpTrigger","direction":"in","methods":["get"]},{"name":"res","type":"http","direction":"out"}]}`)
	write(t, root, "nested/Deep/function.json", `{"bindings":[{"name":"q","type":"queueTrigger","direction":"in","queueName":"x"}]}`)
	write(t, root, "empty/readme.txt", "no function here")

	app, err := Load(root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range app.Functions {
		names = append(names, f.Name)
	}
	if len(names) != 2 || names[0] != "Http" || names[1] != "Tick" {
		t.Fatalf("functions = %v, want [Http Tick]", names)
	}
	if !app.Functions[0].IsHTTPOnly() || app.Functions[1].IsHTTPOnly() {
		t.Errorf("IsHTTPOnly wrong: http=%v timer=%v", app.Functions[0].IsHTTPOnly(), app.Functions[1].IsHTTPOnly())
	}
	tr, ok := app.Functions[1].Trigger()
	if !ok || tr.Type != TypeTimer || tr.Schedule != "%S%" {
		t.Errorf("timer trigger = %+v, %v", tr, ok)
	}
	if got := time.Duration(app.Host.FunctionTimeout); got != 10*time.Minute {
		t.Errorf("functionTimeout = %v", got)
	}
	q := app.Host.Extensions.Queues.WithDefaults()
	if q.MaxDequeueCount != 3 || q.BatchSize != 4 || q.MessageEncoding != "base64" || time.Duration(q.VisibilityTimeout) != 2*time.Second {
		t.Errorf("queue options = %+v", q)
	}
	if app.Host.RoutePrefix() != "api" {
		t.Errorf("route prefix = %q", app.Host.RoutePrefix())
	}
	if err := app.CheckExecutable(); !errors.Is(err, ErrInvalid) {
		t.Errorf("CheckExecutable without a handler = %v, want ErrInvalid", err)
	}
	write(t, root, "handler", "#!/bin/sh\n")
	if err := app.CheckExecutable(); !errors.Is(err, ErrInvalid) {
		t.Errorf("CheckExecutable on a 0644 handler = %v, want ErrInvalid", err)
	}
	if err := os.Chmod(filepath.Join(root, "handler"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := app.CheckExecutable(); err != nil {
		t.Errorf("CheckExecutable: %v", err)
	}
	if app.Executable() != filepath.Join(root, "handler") {
		t.Errorf("Executable = %q", app.Executable())
	}
}

func TestLoadRejectsWhatTheHostRejects(t *testing.T) {
	timer := `{"bindings":[{"name":"t","type":"timerTrigger","direction":"in","schedule":"* * * * * *"}]}`
	cases := map[string]struct{ host, folder, fn string }{
		"no executable":      {`{"version":"2.0","customHandler":{"description":{}}}`, "A", timer},
		"old version":        {`{"version":"1.0","customHandler":{"description":{"defaultExecutablePath":"h"}}}`, "A", timer},
		"bad encoding":       {`{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"h"}},"extensions":{"queues":{"messageEncoding":"utf8"}}}`, "A", timer},
		"digit first":        {hostJSON, "1A", timer},
		"named host":         {hostJSON, "Host", timer},
		"dot in name":        {hostJSON, "a.b", timer},
		"binding underscore": {hostJSON, "A", `{"bindings":[{"name":"my_timer","type":"timerTrigger","direction":"in"}]}`},
		"duplicate binding":  {hostJSON, "A", `{"bindings":[{"name":"t","type":"timerTrigger","direction":"in"},{"name":"T","type":"queue","direction":"out"}]}`},
		"no trigger":         {hostJSON, "A", `{"bindings":[{"name":"res","type":"http","direction":"out"}]}`},
		"not json":           {hostJSON, "A", `{"bindings":`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			write(t, root, "host.json", c.host)
			write(t, root, c.folder+"/function.json", c.fn)
			if _, err := Load(root); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Load = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestParseTimeSpan(t *testing.T) {
	ok := map[string]time.Duration{
		"00:05:00":     5 * time.Minute,
		"01:00:00":     time.Hour,
		"1.02:00:00":   26 * time.Hour,
		"00:00:00.250": 250 * time.Millisecond,
		"-1":           0,
		"":             0,
	}
	for in, want := range ok {
		got, err := ParseTimeSpan(in)
		if err != nil || got != want {
			t.Errorf("ParseTimeSpan(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"5m", "00:60:00", "aa:00:00", "00:00"} {
		if _, err := ParseTimeSpan(bad); err == nil {
			t.Errorf("ParseTimeSpan(%q) succeeded", bad)
		}
	}
}
