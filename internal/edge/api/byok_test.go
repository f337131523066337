package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/twinit/byok-backup/internal/devstack/devauth"
	"github.com/twinit/byok-backup/internal/devstack/kvemu"
	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/edge/server"
	"github.com/twinit/byok-backup/internal/keycheck"
	"github.com/twinit/byok-backup/internal/testing/openapitest"
)

// api is the env behind the real forwarded-HTTP routes: server.New with
// the JWT verifier against a local issuer, the service's routes installed,
// served by httptest.
type api struct {
	*env
	iss *devauth.Issuer
	url string
}

func newAPI(t *testing.T) *api { return newAPIWith(t, envOptions{}) }

func newAPIWith(t *testing.T, o envOptions) *api {
	t.Helper()
	e := newEnv(t, o)
	iss := devauth.TestStart(t)
	v, err := auth.NewVerifier(t.Context(), auth.VerifierOptions{JWKSURL: iss.JWKSURL(), Issuer: iss.IssuerURL(), Audience: iss.Audience()})
	must(t, err)
	srv := server.New(server.Config{Auth: v, Logger: e.log})
	Byok(srv.HandleAPI, e.svc)
	// Every exchange is checked against docs/openapi.yaml when the test ends.
	rec := &openapitest.Recorder{Next: srv.Handler()}
	ts := httptest.NewServer(rec)
	t.Cleanup(func() {
		ts.Close()
		openapitest.NewValidator(t).Check(t, rec.Exchanges())
	})
	return &api{env: e, iss: iss, url: ts.URL}
}

func (a *api) token(tenant string, roles ...string) string {
	a.t.Helper()
	tok, err := a.iss.Token(tenant, roles...)
	must(a.t, err)
	return tok
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

func (r response) code(t testing.TB) string {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// do sends one request; token "" sends none, body "" sends none.
func (a *api) do(method, path, token, body string, header ...string) response {
	a.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.url+path, rd)
	must(a.t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	must(a.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(a.t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func body(vault string) string {
	return `{"keyVaultName":"` + vault + `","keyName":"k","tenantId":"` + entraA + `"}`
}

// TestHTTPRoles drives every BYOK route with each role, the wrong tenant
// and no token.
func TestHTTPRoles(t *testing.T) {
	a := newAPI(t)
	a.vault("acme-kv", 2048)
	routes := []struct{ method, path, body string }{
		{"GET", "/api/tenants/acme/byok", ""},
		{"PUT", "/api/tenants/acme/byok", body("acme-kv")},
		{"POST", "/api/tenants/acme/byok/validate", body("acme-kv")},
		{"DELETE", "/api/tenants/acme/byok", ""},
	}
	for _, who := range []struct {
		name    string
		token   string
		allowed []string // methods that succeed
		status  int      // for the others
	}{
		{"byok.read", a.token("acme", auth.RoleRead), []string{"GET"}, 403},
		{"backup.operator", a.token("acme", auth.RoleBackupOperator), []string{"GET"}, 403},
		{"byok.admin", a.token("acme", auth.RoleAdmin), []string{"GET", "PUT", "POST", "DELETE"}, 0},
		{"platform.operator/otherTenant", a.token("ops", auth.RolePlatformOperator), []string{"GET", "PUT", "POST", "DELETE"}, 0},
		{"byok.admin/wrongTenant", a.token("other", auth.RoleAdmin), nil, 403},
		{"noRoles", a.token("acme"), nil, 403},
		{"noToken", "", nil, 401},
		{"badToken", "x.y.z", nil, 401},
	} {
		for _, rt := range routes {
			t.Run(who.name+"/"+rt.method, func(t *testing.T) {
				a.emu.ResetRequests()
				r := a.do(rt.method, rt.path, who.token, rt.body)
				if slices.Contains(who.allowed, rt.method) {
					if r.status != 200 {
						t.Fatalf("status %d %s, want 200", r.status, r.body)
					}
					return
				}
				if r.status != who.status {
					t.Fatalf("status %d %s, want %d", r.status, r.body, who.status)
				}
				want := map[int]string{401: "Unauthorized", 403: "Forbidden"}[who.status]
				if r.code(t) != want {
					t.Fatalf("code %q, want %s", r.code(t), want)
				}
				if (r.status == 401) != strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Fatalf("WWW-Authenticate %q on %d", r.header.Get("WWW-Authenticate"), r.status)
				}
				if n := len(a.emu.Requests()); n != 0 {
					t.Fatalf("a refused request reached Key Vault %d times", n)
				}
			})
		}
	}
}

// TestHTTPStatusDocument walks GET (never configured) → PUT → GET → DELETE
// → GET and checks the document's fields against the contract.
func TestHTTPStatusDocument(t *testing.T) {
	a := newAPI(t)
	kid := a.vault("acme-kv", 3072)
	admin := a.token("acme", auth.RoleAdmin)
	fields := []string{"tenant", "state", "keyVaultName", "keyName", "tenantId", "keyId", "keyType", "keySize",
		"fallbackToPlatformKey", "applicationId", "enabledAt", "lastCheck", "degradedSince", "ownership"}
	hasFields := func(t *testing.T, m map[string]any, extra ...string) {
		t.Helper()
		want := append(slices.Clone(fields), extra...)
		if len(m) != len(want) {
			t.Fatalf("fields %v, want %v", keys(m), want)
		}
		for _, f := range want {
			if _, ok := m[f]; !ok {
				t.Fatalf("field %s missing from %v", f, m)
			}
		}
	}

	r := a.do("GET", "/api/tenants/acme/byok", admin, "")
	m := r.json(t)
	hasFields(t, m)
	if r.status != 200 || m["state"] != "disabled" || m["applicationId"] != appID || m["degradedSince"] != nil || m["lastCheck"] != nil ||
		m["fallbackToPlatformKey"] != true || r.header.Get("ETag") != `"0"` || r.header.Get("Content-Type") != "application/json" ||
		!reflect.DeepEqual(m["ownership"], map[string]any{"tagName": "twinit-tenants", "tagValue": "acme"}) {
		t.Fatalf("GET before configuring: %d %s etag %s", r.status, r.body, r.header.Get("ETag"))
	}

	r = a.do("PUT", "/api/tenants/acme/byok", admin, body("acme-kv"), "If-Match", `"0"`)
	m = r.json(t)
	hasFields(t, m)
	lc, _ := m["lastCheck"].(map[string]any)
	if r.status != 200 || m["state"] != "active" || m["keyId"] != kid || m["keyType"] != "RSA" || m["keySize"] != 3072.0 ||
		m["tenant"] != "acme" || m["keyVaultName"] != "acme-kv" || m["keyName"] != "k" || m["tenantId"] != entraA ||
		lc["ok"] != true || lc["code"] != "" || lc["message"] != "" || r.header.Get("ETag") != `"1"` {
		t.Fatalf("PUT: %d %s etag %s", r.status, r.body, r.header.Get("ETag"))
	}
	for _, f := range []string{"enabledAt"} {
		if s, _ := m[f].(string); !strings.HasSuffix(s, "Z") {
			t.Fatalf("%s = %v, want RFC 3339 UTC", f, m[f])
		}
	}

	// A pinned version shows keyVersion.
	pinned := `{"keyVaultName":"acme-kv","keyName":"k","tenantId":"` + entraA + `","keyVersion":"` + version(kid) + `","fallbackToPlatformKey":false}`
	r = a.do("PUT", "/api/tenants/acme/byok", a.token("acme", auth.RoleAdmin), pinned)
	m = r.json(t)
	hasFields(t, m, "keyVersion")
	if r.status != 200 || m["keyVersion"] != version(kid) || m["fallbackToPlatformKey"] != false || r.header.Get("ETag") != `"2"` {
		t.Fatalf("pinned PUT: %d %s", r.status, r.body)
	}

	r = a.do("GET", "/api/tenants/acme/byok", a.token("acme", auth.RoleRead), "")
	if r.status != 200 || r.json(t)["keyId"] != kid || r.header.Get("ETag") != `"2"` {
		t.Fatalf("GET after PUT: %d %s", r.status, r.body)
	}

	r = a.do("DELETE", "/api/tenants/acme/byok", admin, "", "If-Match", `"1"`)
	if r.status != 409 || r.code(t) != "Conflict" {
		t.Fatalf("DELETE with a stale If-Match: %d %s", r.status, r.body)
	}
	r = a.do("DELETE", "/api/tenants/acme/byok", admin, "", "If-Match", `"2"`)
	m = r.json(t)
	hasFields(t, m)
	if r.status != 200 || m["state"] != "disabled" || m["keyId"] != "" || r.header.Get("ETag") != `"3"` {
		t.Fatalf("DELETE: %d %s", r.status, r.body)
	}
	if r := a.do("GET", "/api/tenants/acme/byok", admin, ""); r.json(t)["state"] != "disabled" {
		t.Fatalf("GET after DELETE: %s", r.body)
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestHTTPInvalidInput: each malformed field and body is a 400 before any
// request to Key Vault.
func TestHTTPInvalidInput(t *testing.T) {
	a := newAPI(t)
	a.vault("acme-kv", 2048)
	admin := a.token("acme", auth.RoleAdmin)
	good := map[string]any{"keyVaultName": "acme-kv", "keyName": "k", "tenantId": entraA}
	with := func(k string, v any) string {
		m := map[string]any{}
		for k, v := range good {
			m[k] = v
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	cases := map[string]string{
		"keyVaultName=short":     with("keyVaultName", "kv"),
		"keyVaultName=host":      with("keyVaultName", "evil.example.com"),
		"keyVaultName=url":       with("keyVaultName", "https://x/"),
		"keyVaultName=missing":   with("keyVaultName", nil),
		"keyName=bad":            with("keyName", "k_1"),
		"keyName=missing":        with("keyName", nil),
		"tenantId=bad":           with("tenantId", "contoso.onmicrosoft.com"),
		"tenantId=missing":       with("tenantId", nil),
		"keyVersion=bad":         with("keyVersion", "v1"),
		"fallback=notBool":       with("fallbackToPlatformKey", "yes"),
		"body=unknownField":      with("keyUrl", "https://evil/"),
		"body=notJSON":           "keyVaultName=acme-kv",
		"body=array":             "[]",
		"body=twoObjects":        body("acme-kv") + body("acme-kv"),
		"body=keyVaultName=type": with("keyVaultName", 7),
	}
	for name, b := range cases {
		for _, route := range []struct{ method, path string }{{"PUT", "/api/tenants/acme/byok"}, {"POST", "/api/tenants/acme/byok/validate"}} {
			t.Run(name+"/"+route.method, func(t *testing.T) {
				a.emu.ResetRequests()
				r := a.do(route.method, route.path, admin, b)
				if r.status != 400 || r.code(t) != "InvalidRequest" {
					t.Fatalf("status %d %s, want 400 InvalidRequest", r.status, r.body)
				}
				if n := len(a.emu.Requests()); n != 0 {
					t.Fatalf("invalid input sent %d requests to Key Vault", n)
				}
			})
		}
	}
	if r := a.do("PUT", "/api/tenants/acme/byok", admin, ""); r.status != 400 || r.code(t) != "InvalidRequest" {
		t.Fatalf("PUT without body: %d %s", r.status, r.body)
	}
	if r := a.do("GET", "/api/tenants/Not_A_Tenant/byok", a.token("Not_A_Tenant", auth.RoleRead), ""); r.status != 400 {
		t.Fatalf("bad tenant id: %d %s", r.status, r.body)
	}
}

// TestHTTPValidationFailures: every 422 cause through PUT, with the checks,
// and the same failure as 200 ok:false through validate.
func TestHTTPValidationFailures(t *testing.T) {
	a := newAPI(t)
	a.vault("off-kv", 2048)
	must(t, a.emu.SetEnabled("off-kv", "k", "", false))
	a.vault("good-kv", 2048)
	must(t, a.emu.CreateVault("denied-kv", entraA, kvemu.AccessPolicy))
	_, err := a.emu.CreateKey("denied-kv", "k", "RSA", 2048, nil)
	must(t, err)
	a.vault("ops-kv", 2048)
	must(t, a.emu.SetKeyOps("ops-kv", "k", "", []string{"sign", "verify"}))
	must(t, a.emu.CreateVault("ec-kv", entraA, kvemu.AccessPolicy))
	_, err = a.emu.CreateKey("ec-kv", "k", "EC", 256, nil)
	must(t, err)
	a.tag("ec-kv", "k", owners)
	must(t, a.emu.Grant("ec-kv", kvemu.CustomerToken(appID, entraA), "get", "wrapKey", "unwrapKey"))
	a.vault("down-kv", 2048)
	a.emu.SetFault("down-kv", kvemu.Fault{Down: true})
	admin := a.token("acme", auth.RoleAdmin)

	for code, b := range map[string]string{
		"KeyDisabled":              body("off-kv"),
		"KeyNotFound":              `{"keyVaultName":"good-kv","keyName":"missing","tenantId":"` + entraA + `"}`,
		"KeyAccessDenied":          body("denied-kv"),
		"KeyVaultAuthFailed":       `{"keyVaultName":"good-kv","keyName":"k","tenantId":"` + entraB + `"}`,
		"KeyVaultUnreachable":      body("down-kv"),
		"KeyOperationNotPermitted": body("ops-kv"),
		"UnsupportedKeyType":       body("ec-kv"),
	} {
		t.Run(code, func(t *testing.T) {
			r := a.do("PUT", "/api/tenants/acme/byok", admin, b)
			m := r.json(t)
			if r.status != 422 || r.code(t) != code {
				t.Fatalf("PUT: %d %s, want 422 %s", r.status, r.body, code)
			}
			msg, _ := m["error"].(map[string]any)["message"].(string)
			if msg == "" || strings.Contains(msg, "RESPONSE") || strings.Contains(msg, "innererror") {
				t.Fatalf("message %q", msg)
			}
			checks, _ := m["checks"].([]any)
			if len(checks) != len(keycheck.Names) {
				t.Fatalf("checks %v", m["checks"])
			}
			if r := a.do("GET", "/api/tenants/acme/byok", admin, ""); r.json(t)["state"] != "disabled" || r.header.Get("ETag") != `"0"` {
				t.Fatalf("a failed PUT changed the settings: %s", r.body)
			}
			r = a.do("POST", "/api/tenants/acme/byok/validate", admin, b)
			m = r.json(t)
			if r.status != 200 || m["ok"] != false || len(m["checks"].([]any)) != len(keycheck.Names) || r.code(t) != code {
				t.Fatalf("validate: %d %s", r.status, r.body)
			}
		})
	}
	t.Run("KeyAccessDenied/namesApplication", func(t *testing.T) {
		r := a.do("PUT", "/api/tenants/acme/byok", admin, body("denied-kv"))
		if msg := r.json(t)["error"].(map[string]any)["message"].(string); !strings.Contains(msg, appID) || !strings.Contains(msg, "wrapKey") {
			t.Fatalf("message %q does not tell which application to grant wrapKey/unwrapKey", msg)
		}
	})
}

func TestHTTPValidate(t *testing.T) {
	a := newAPI(t)
	a.vault("acme-kv", 2048)
	admin := a.token("acme", auth.RoleAdmin)
	if r := a.do("POST", "/api/tenants/acme/byok/validate", admin, ""); r.status != 404 || r.code(t) != "NotFound" {
		t.Fatalf("validate with nothing stored and no body: %d %s", r.status, r.body)
	}
	r := a.do("POST", "/api/tenants/acme/byok/validate", admin, body("acme-kv"))
	m := r.json(t)
	if r.status != 200 || m["ok"] != true || len(m["checks"].([]any)) != len(keycheck.Names) {
		t.Fatalf("validate body: %d %s", r.status, r.body)
	}
	for _, c := range m["checks"].([]any) {
		c := c.(map[string]any)
		if c["ok"] != true || c["name"] == "" || c["detail"] == nil {
			t.Fatalf("check %v", c)
		}
	}
	if r := a.do("GET", "/api/tenants/acme/byok", admin, ""); r.json(t)["state"] != "disabled" {
		t.Fatalf("validate changed the settings: %s", r.body)
	}
	if r := a.do("PUT", "/api/tenants/acme/byok", admin, body("acme-kv")); r.status != 200 {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	if r := a.do("POST", "/api/tenants/acme/byok/validate", admin, ""); r.status != 200 || r.json(t)["ok"] != true {
		t.Fatalf("validate stored: %d %s", r.status, r.body)
	}
}

// TestHTTPConcurrentPut races two admins' PUTs with the ETag both read:
// exactly one 200 and one 409.
func TestHTTPConcurrentPut(t *testing.T) {
	a := newAPI(t)
	a.vault("one-kv", 2048)
	a.vault("two-kv", 2048)
	get := a.do("GET", "/api/tenants/acme/byok", a.token("acme", auth.RoleAdmin), "")
	etag := get.header.Get("ETag")
	var wg sync.WaitGroup
	statuses := make([]int, 2)
	for i, v := range []string{"one-kv", "two-kv"} {
		tok := a.token("acme", auth.RoleAdmin)
		wg.Go(func() {
			statuses[i] = a.do("PUT", "/api/tenants/acme/byok", tok, body(v), "If-Match", etag).status
		})
	}
	wg.Wait()
	slices.Sort(statuses)
	if statuses[0] != 200 || statuses[1] != 409 {
		t.Fatalf("statuses %v, want one 200 and one 409", statuses)
	}
	if r := a.do("GET", "/api/tenants/acme/byok", a.token("acme", auth.RoleRead), ""); r.header.Get("ETag") != `"1"` {
		t.Fatalf("after the race: %s etag %s", r.body, r.header.Get("ETag"))
	}
}
