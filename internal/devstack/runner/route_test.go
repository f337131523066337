package runner

import (
	"io"
	"log/slog"
	"testing"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestRouteTemplates(t *testing.T) {
	cases := []struct {
		template, path string
		ok             bool
		vals           map[string]string
	}{
		{"tenants/{tenant}/byok", "tenants/acme/byok", true, map[string]string{"tenant": "acme"}},
		{"tenants/{tenant}/byok", "Tenants/acme/BYOK", true, map[string]string{"tenant": "acme"}},
		{"tenants/{tenant}/byok", "tenants/acme/byok/validate", false, nil},
		{"tenants/{tenant}/byok", "tenants//byok", false, nil},
		{"tenants/{tenant}/backups/{backupId?}", "tenants/acme/backups", true, map[string]string{"tenant": "acme"}},
		{"tenants/{tenant}/backups/{backupId?}", "tenants/acme/backups/", true, map[string]string{"tenant": "acme"}},
		{"tenants/{tenant}/backups/{backupId?}", "tenants/acme/backups/b1", true, map[string]string{"tenant": "acme", "backupId": "b1"}},
		{"tenants/{tenant}/backups/{backupId?}", "tenants/acme/backups/b1/x", false, nil},
		{"items/{id:int}", "items/5", true, map[string]string{"id": "5"}},
		{"files/{*path}", "files/a/b/c", true, map[string]string{"path": "a/b/c"}},
		{"files/{id}", "files/a%2Fb", true, map[string]string{"id": "a/b"}},
		{"health", "health", true, map[string]string{}},
		{"health", "", false, nil},
	}
	for _, c := range cases {
		rt, err := parseRoute("F", c.template, nil, true)
		if err != nil {
			t.Fatalf("parseRoute(%q): %v", c.template, err)
		}
		vals, ok := rt.match(c.path)
		if ok != c.ok {
			t.Errorf("%q ~ %q = %v, want %v", c.template, c.path, ok, c.ok)
			continue
		}
		for k, v := range c.vals {
			if vals[k] != v {
				t.Errorf("%q ~ %q: %s = %q, want %q", c.template, c.path, k, vals[k], v)
			}
		}
	}
	for _, bad := range []string{"a/{opt?}/b", "a/{}", "a/x{y}"} {
		if _, err := parseRoute("F", bad, nil, true); err == nil {
			t.Errorf("parseRoute(%q) succeeded", bad)
		}
	}
}

func TestRoutesPreferMoreLiteralTemplates(t *testing.T) {
	general, _ := parseRoute("General", "tenants/{tenant}/{what}", nil, true)
	specific, _ := parseRoute("Byok", "tenants/{tenant}/byok", nil, true)
	rs := []*route{general, specific}
	sortRoutes(rs)
	if rs[0].function != "Byok" {
		t.Errorf("first route = %s, want Byok", rs[0].function)
	}
}

func FuzzRouteMatch(f *testing.F) {
	f.Add("tenants/{tenant}/backups/{backupId?}", "tenants/acme/backups/x")
	f.Add("files/{*p}", "files/%zz/a")
	f.Fuzz(func(t *testing.T, template, path string) {
		rt, err := parseRoute("F", template, nil, true)
		if err != nil {
			return
		}
		vals, ok := rt.match(path)
		if ok && vals == nil {
			t.Fatal("match without values map")
		}
	})
}
