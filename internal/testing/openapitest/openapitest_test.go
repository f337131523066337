package openapitest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestValidatorTellsGoodFromBad: the recorder keeps what passes through,
// and the validator accepts a contract answer and refuses an undocumented
// status, a body off its schema and a route the document lacks.
func TestValidatorTellsGoodFromBad(t *testing.T) {
	v := NewValidator(t)
	answer := func(status int, body string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		})
	}
	record := func(h http.Handler, method, target, body string) Exchange {
		t.Helper()
		rec := &Recorder{Next: h}
		req := httptest.NewRequest(method, target, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer x")
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		rec.ServeHTTP(w, req)
		ex := rec.Exchanges()
		if len(ex) != 1 || ex[0].Status != w.Code || string(ex[0].RespBody) != w.Body.String() || string(ex[0].ReqBody) != body {
			t.Fatalf("recorded %+v, client saw %d %s", ex, w.Code, w.Body)
		}
		return ex[0]
	}
	backup := `{"backupId":"20261202T043516.732Z-vg4zyola5rm7rtqb","tenant":"acme","status":"completed","reason":"manual",
		"requestedAt":"2026-12-02T04:35:16.732Z","startedAt":"2026-12-02T04:35:17Z","completedAt":"2026-12-02T04:35:18Z",
		"keySource":"platform","keyId":"https://p.vault.azure.net/keys/k/0123","fallbackReason":{"code":"KeyDisabled","message":"Enable it."},
		"records":1,"files":2,"bytes":3,"storedBytes":4,"chunks":1,"error":null}`
	good := []Exchange{
		record(answer(200, backup), "GET", "/api/tenants/acme/backups/20261202T043516.732Z-vg4zyola5rm7rtqb", ""),
		record(answer(422, `{"error":{"code":"KeyOwnershipNotProven","message":"Tag the key."},"checks":[{"name":"keyFound","ok":true,"detail":""}]}`),
			"PUT", "/api/tenants/acme/byok", `{"keyVaultName":"contoso-kv","keyName":"k","tenantId":"72f988bf-86f1-41af-91ab-2d7cd011db47"}`),
		record(answer(200, `{"status":"ok","checks":{"storage":"ok"}}`), "GET", "/api/health", ""),
	}
	for _, e := range good {
		if err := v.Validate(context.Background(), e); err != nil {
			t.Errorf("contract answer refused: %v", err)
		}
	}
	bad := map[string]Exchange{
		"undocumented status": record(answer(418, `{"error":{"code":"Internal","message":"x"}}`), "GET", "/api/tenants/acme/byok", ""),
		"unknown error code":  record(answer(404, `{"error":{"code":"Nope","message":"x"}}`), "GET", "/api/tenants/acme/byok", ""),
		"missing field":       record(answer(200, `{"backupId":"b1","tenant":"acme"}`), "GET", "/api/tenants/acme/backups/b1", ""),
		"unknown route":       record(answer(200, `{}`), "GET", "/api/tenants/acme/nothing", ""),
		"bad request body":    record(answer(202, `{"restoreId":"r1","state":"queued"}`), "POST", "/api/tenants/acme/restores", `{"mode":"sideways"}`),
	}
	for name, e := range bad {
		if err := v.Validate(context.Background(), e); err == nil {
			t.Errorf("%s: accepted %s", name, e)
		}
	}
}
