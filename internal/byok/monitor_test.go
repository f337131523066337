package byok

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/audit"
	"github.com/twinit/byok-backup/internal/devstack/kvemu"
	"github.com/twinit/byok-backup/internal/edge/server"
	"github.com/twinit/byok-backup/internal/errcode"
)

// TestMonitorTransitions disables, re-enables, rotates and revokes keys in
// the emulator and checks what each monitor run records.
func TestMonitorTransitions(t *testing.T) {
	e := newEnv(t, envOptions{})
	first := e.vault("acme-kv", 2048)
	pinnedFirst := e.vault("pin-kv", 2048)
	_, err := e.svc.Configure(bg(), "acme", settingsFor("acme-kv"), "")
	must(t, err)
	pinned := settingsFor("pin-kv")
	pinned.KeyVersion = version(pinnedFirst)
	_, err = e.svc.Configure(bg(), "pinned", pinned, "")
	must(t, err)
	// A disabled tenant is not checked.
	_, err = e.svc.Configure(bg(), "gone", settingsFor("acme-kv"), "")
	must(t, err)
	_, err = e.svc.Disable(bg(), "gone", "")
	must(t, err)

	run := func(wantTransitions int) MonitorReport {
		t.Helper()
		rep, err := e.svc.Monitor(bg())
		must(t, err)
		if rep.Tenants != 2 || rep.Checked != 2 || rep.Transitions != wantTransitions {
			t.Fatalf("report %+v, want 2 tenants checked and %d transitions", rep, wantTransitions)
		}
		return rep
	}
	status := func(tenant string) Status {
		t.Helper()
		st, err := e.svc.Status(bg(), tenant)
		must(t, err)
		return st
	}

	before := status("acme").LastCheck.At
	run(0)
	if st := status("acme"); st.State != Active || !st.LastCheck.At.After(before) || !st.LastCheck.OK {
		t.Fatalf("healthy key: %+v", st)
	}

	t.Run("disable→degraded", func(t *testing.T) {
		must(t, e.emu.SetEnabled("acme-kv", "k", "", false))
		run(1)
		st := status("acme")
		if st.State != Degraded || st.DegradedSince == nil || st.LastCheck.OK || st.LastCheck.Code != "KeyDisabled" || st.KeyID != first {
			t.Fatalf("after disabling the key: %+v", st)
		}
		warns := e.logs.Records("byok key state changed")
		last := warns[len(warns)-1]
		if last["level"] != "WARN" || last["tenant"] != "acme" || last["code"] != "KeyDisabled" || last["to"] != "degraded" {
			t.Fatalf("transition log %v", last)
		}
		if st := status("pinned"); st.State != Active {
			t.Fatalf("another tenant moved: %+v", st)
		}
		// Still degraded on the next run: degradedSince stays.
		run(0)
		if again := status("acme"); !again.DegradedSince.Equal(*st.DegradedSince) {
			t.Fatalf("degradedSince moved from %v to %v", st.DegradedSince, again.DegradedSince)
		}
	})
	t.Run("enable→active", func(t *testing.T) {
		must(t, e.emu.SetEnabled("acme-kv", "k", "", true))
		run(1)
		if st := status("acme"); st.State != Active || st.DegradedSince != nil || !st.LastCheck.OK {
			t.Fatalf("after re-enabling: %+v", st)
		}
	})
	t.Run("rotate", func(t *testing.T) {
		rotated, err := e.emu.RotateKey("acme-kv", "k")
		must(t, err)
		_, err = e.emu.RotateKey("pin-kv", "k")
		must(t, err)
		run(0)
		if st := status("acme"); st.KeyID != rotated || st.State != Active {
			t.Fatalf("unpinned keyId %s, want the rotated %s", st.KeyID, rotated)
		}
		if st := status("pinned"); st.KeyID != pinnedFirst || st.State != Active {
			t.Fatalf("pinned keyId %s, want %s", st.KeyID, pinnedFirst)
		}
	})
	t.Run("revoke→KeyAccessDenied", func(t *testing.T) {
		must(t, e.emu.Revoke("acme-kv", kvemu.CustomerToken(appID, entraA)))
		run(1)
		st := status("acme")
		if st.State != Degraded || st.LastCheck.Code != "KeyAccessDenied" {
			t.Fatalf("after revoking the grant: %+v", st)
		}
		must(t, e.emu.Grant("acme-kv", kvemu.CustomerToken(appID, entraA), "get", "wrapKey", "unwrapKey"))
		run(1)
		if st := status("acme"); st.State != Active {
			t.Fatalf("after granting again: %+v", st)
		}
	})
	t.Run("audited", func(t *testing.T) {
		entries, err := e.audit.List(bg(), "acme", 1000)
		must(t, err)
		outcomes := map[string]int{}
		for _, en := range entries {
			if en.Operation == audit.Validate {
				outcomes[en.Outcome]++
			}
		}
		if outcomes["ok"] == 0 || outcomes["KeyDisabled"] != 2 || outcomes["KeyAccessDenied"] != 1 {
			t.Fatalf("validate audit outcomes %v", outcomes)
		}
	})
}

// TestMonitorDeadVaults: a down vault and one slower than the per-tenant
// timeout are degraded; the healthy ones are checked all the same.
func TestMonitorDeadVaults(t *testing.T) {
	e := newEnv(t, envOptions{concurrency: 2, checkTimeout: 300 * time.Millisecond})
	healthy := []string{"h1", "h2", "h3", "h4", "h5"}
	for _, n := range append(healthy, "down", "slow") {
		e.vault(n+"-kv", 2048)
		_, err := e.svc.Configure(bg(), n, settingsFor(n+"-kv"), "")
		must(t, err)
	}
	e.emu.SetFault("down-kv", kvemu.Fault{Down: true})
	e.emu.SetFault("slow-kv", kvemu.Fault{Latency: 5 * time.Second})
	rep, err := e.svc.Monitor(bg())
	must(t, err)
	if rep.Checked != 7 || rep.Active != 5 || rep.Degraded != 2 || rep.Transitions != 2 {
		t.Fatalf("report %+v", rep)
	}
	for _, n := range healthy {
		if st, _ := e.svc.Status(bg(), n); st.State != Active {
			t.Fatalf("%s: %+v", n, st)
		}
	}
	for _, n := range []string{"down", "slow"} {
		st, _ := e.svc.Status(bg(), n)
		if st.State != Degraded || st.LastCheck.Code != string(errcode.KeyVaultUnreachable) {
			t.Fatalf("%s: %+v", n, st)
		}
	}
}

// TestMonitorTimerRoute runs the monitor through the server's ByokMonitor
// route with a timer payload as the host sends it.
func TestMonitorTimerRoute(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.vault("acme-kv", 2048)
	_, err := e.svc.Configure(bg(), "acme", settingsFor("acme-kv"), "")
	must(t, err)
	must(t, e.emu.SetEnabled("acme-kv", "k", "", false))
	payload, err := os.ReadFile("../edge/invoke/testdata/timer_assembled.json")
	must(t, err)
	srv := server.New(server.Config{ByokMonitor: e.svc.MonitorTimer, Logger: e.svc.log})
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/ByokMonitor", bytes.NewReader(payload)))
	if rec.Code != 200 {
		t.Fatalf("ByokMonitor: %d %s", rec.Code, rec.Body)
	}
	if st, _ := e.svc.Status(bg(), "acme"); st.State != Degraded || st.LastCheck.Code != "KeyDisabled" {
		t.Fatalf("after the timer: %+v", st)
	}
}
