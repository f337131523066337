package kvemu

import (
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func FuzzParseToken(f *testing.F) {
	for _, s := range []string{AdminToken, PlatformToken, CustomerToken("app", "tenant"), "emulator.", "emulator.a.", "x", "emulator..t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		c, ok := parseToken(token)
		if !ok {
			return
		}
		if tokenPrefix+c.id != token {
			t.Fatalf("caller id %q does not round-trip token %q", c.id, token)
		}
		if c.tenant != "" && (CustomerToken(c.app, c.tenant) != token || strings.Contains(c.tenant, ".")) {
			t.Fatalf("customer token %q parsed as app %q tenant %q", token, c.app, c.tenant)
		}
		if c.admin != (token == AdminToken) {
			t.Fatalf("admin flag wrong for %q", token)
		}
	})
}

func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{
		"/keys", "/keys/k1", "/keys/k1/", "/keys/k1/create", "/keys/k1/rotate", "/keys/k1/versions",
		"/keys/k1/wrapkey", "/keys/k1/0123456789abcdef0123456789abcdef/unwrapkey", "/deletedkeys/k1/recover",
		"/keys//wrapkey", "/keys/k1/v/x/y", "/",
	} {
		f.Add("POST", s)
		f.Add("GET", s)
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		rt, aerr := parseRoute(method, path)
		if aerr != nil {
			if aerr.Status < 400 || aerr.Code == "" || aerr.Message == "" {
				t.Fatalf("bad error %+v", aerr)
			}
			return
		}
		if rt.action == "" || !(slices.Contains(knownOps, rt.op)) {
			t.Fatalf("route %+v for %s %s", rt, method, path)
		}
		if strings.HasPrefix(rt.action, "list") {
			return
		}
		if !keyNameRE.MatchString(rt.name) || strings.Contains(rt.version, "/") {
			t.Fatalf("route %+v for %s %s", rt, method, path)
		}
	})
}

// FuzzDataPlane sends arbitrary admin requests to a vault and checks that
// every answer is a success or the service's error shape, never a panic.
func FuzzDataPlane(f *testing.F) {
	key, err := generateRSA(2048)
	if err != nil {
		f.Fatal(err)
	}
	e, err := Start(Options{RSAKey: func(int) (*rsa.PrivateKey, error) { return key, nil }})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = e.Close() })
	if err := e.CreateVault("kv1", "t1", AccessPolicy); err != nil {
		f.Fatal(err)
	}
	if _, err := e.CreateKey("kv1", "k1", "RSA", 2048, nil); err != nil {
		f.Fatal(err)
	}
	seeds := []struct{ method, path, body string }{
		{"POST", "/keys/k1/wrapkey", `{"alg":"RSA-OAEP-256","value":"AAECAwQ"}`},
		{"POST", "/keys/k1/unwrapkey", `{"alg":"RSA-OAEP","value":"AAECAwQ="}`},
		{"POST", "/keys/k2/create", `{"kty":"RSA","key_size":2048,"attributes":{"enabled":false,"exp":1}}`},
		{"PATCH", "/keys/k1/", `{"key_ops":["wrapKey"],"attributes":{"nbf":99999999999},"tags":{"a":"b"}}`},
		{"POST", "/keys/k1/encrypt", `{"alg":"RSA1_5","value":"` + strings.Repeat("A", 400) + `"}`},
		{"DELETE", "/keys/k1", ``},
		{"POST", "/deletedkeys/k1/recover", ``},
		{"GET", "/keys", ``},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.body)
	}
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, "?#% \t\r\n") || method == "" {
			return
		}
		req, err := http.NewRequest(method, "https://kv1.localhost/x?api-version=2025-07-01", strings.NewReader(body))
		if err != nil {
			return
		}
		req.URL.Path = path
		req.Header.Set("Authorization", "Bearer "+AdminToken)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code < 400 {
			return
		}
		var b errorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || b.Error.Code == "" || b.Error.Message == "" {
			t.Fatalf("%s %s -> %d %q", method, path, rec.Code, rec.Body.String())
		}
	})
}
