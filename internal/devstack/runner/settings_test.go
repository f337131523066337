package runner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadLocalSettings(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "local.settings.json")
	mustWrite(t, p, `{"IsEncrypted":false,"Values":{"A":"1","FUNCTIONS_WORKER_RUNTIME":"custom"},"Host":{"LocalHttpPort":7072}}`)
	s, err := ReadLocalSettings(p)
	if err != nil {
		t.Fatal(err)
	}
	if s.Values["A"] != "1" || s.Host.LocalHTTPPort != 7072 {
		t.Errorf("settings = %+v", s)
	}
	for name, body := range map[string]string{
		"encrypted":  `{"IsEncrypted":true,"Values":{}}`,
		"non-string": `{"Values":{"A":1}}`,
		"not json":   `{"Values":`,
	} {
		mustWrite(t, p, body)
		if _, err := ReadLocalSettings(p); err == nil {
			t.Errorf("%s: ReadLocalSettings succeeded", name)
		}
	}
	if _, err := ReadLocalSettings(filepath.Join(dir, "missing.json")); !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("missing file: %v, want a not-exist error", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func TestResolve(t *testing.T) {
	set := map[string]string{"Q": "jobs", "ENV": "dev", "EMPTY": ""}
	for in, want := range map[string]string{
		"%Q%":         "jobs",
		"%Q%-%ENV%":   "jobs-dev",
		"literal":     "literal",
		"x%EMPTY%y":   "xy",
		"0 0 2 * * *": "0 0 2 * * *",
	} {
		if got, err := resolve(in, set); err != nil || got != want {
			t.Errorf("resolve(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := resolve("%NOPE%", set); err == nil || !strings.Contains(err.Error(), "NOPE") {
		t.Errorf("resolve of an unset setting = %v, want an error naming it", err)
	}
}

func TestConnectionString(t *testing.T) {
	set := map[string]string{"AzureWebJobsStorage": "UseDevelopmentStorage=true", "AzureWebJobsOther": "cs-other", "Direct": "cs-direct"}
	cases := map[string]string{"": developmentStorage, "AzureWebJobsStorage": developmentStorage, "Other": "cs-other", "Direct": "cs-direct"}
	for name, want := range cases {
		if got, err := connectionString(name, set); err != nil || got != want {
			t.Errorf("connectionString(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := connectionString("Missing", set); err == nil {
		t.Error("connectionString of an unset connection succeeded")
	}
}
