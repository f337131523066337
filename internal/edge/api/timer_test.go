package api

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/twinit/byok-backup/internal/byok"
	"github.com/twinit/byok-backup/internal/edge/server"
)

// TestMonitorTimerRoute runs the monitor through the ByokMonitor adapter on
// the server's route with a timer payload as the host sends it.
func TestMonitorTimerRoute(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.vault("acme-kv", 2048)
	_, err := e.svc.Configure(bg(), "acme", settingsFor("acme-kv"), "")
	must(t, err)
	must(t, e.emu.SetEnabled("acme-kv", "k", "", false))
	payload, err := os.ReadFile("../invoke/testdata/timer_assembled.json")
	must(t, err)
	srv := server.New(server.Config{Logger: e.log})
	srv.HandleTimer("ByokMonitor", ByokMonitor(e.svc, nil, nil))
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/ByokMonitor", bytes.NewReader(payload)))
	if rec.Code != 200 {
		t.Fatalf("ByokMonitor: %d %s", rec.Code, rec.Body)
	}
	if st, _ := e.svc.Status(bg(), "acme"); st.State != byok.Degraded || st.LastCheck.Code != "KeyDisabled" {
		t.Fatalf("after the timer: %+v", st)
	}
}
