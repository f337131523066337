package api

import (
	"net/http"
	"os"
	"slices"
	"testing"

	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/edge/server"
)

type recorder struct {
	routes, queues, timers, public []string
	unwired                        []string
}

func (r *recorder) HandleAPI(pattern string, _ auth.Permission, _ server.APIHandler) {
	r.routes = append(r.routes, pattern)
}

func (r *recorder) HandleQueue(name string, fn server.QueueFunc) {
	r.queues = append(r.queues, name)
	if fn == nil {
		r.unwired = append(r.unwired, name)
	}
}

func (r *recorder) HandleTimer(name string, fn server.TimerFunc) {
	r.timers = append(r.timers, name)
	if fn == nil {
		r.unwired = append(r.unwired, name)
	}
}

func (r *recorder) HandlePublic(pattern string, _ http.Handler) {
	r.public = append(r.public, pattern)
}

// TestRegisterCoversContract: Register registers every payload-mode
// function of the functions/ folder and every API route of API.md §2.
func TestRegisterCoversContract(t *testing.T) {
	var r recorder
	// Nil services: the adapters are then unwired, which the server answers
	// with a 500 the host retries; the registration itself is what counts.
	Register(&r, Services{})
	slices.Sort(r.queues)
	slices.Sort(r.timers)
	if want := []string{"BackupWorker", "RestoreWorker", "RewrapWorker"}; !slices.Equal(r.queues, want) {
		t.Errorf("queue functions = %v, want %v", r.queues, want)
	}
	if want := []string{"BackupRetention", "BackupScheduler", "ByokMonitor"}; !slices.Equal(r.timers, want) {
		t.Errorf("timer functions = %v, want %v", r.timers, want)
	}
	if len(r.unwired) != 6 {
		t.Errorf("unwired with nil services = %v, want all six", r.unwired)
	}
	for _, name := range append(r.queues, r.timers...) {
		if _, err := os.Stat("../../../functions/" + name + "/function.json"); err != nil {
			t.Errorf("%s has no function folder: %v", name, err)
		}
	}
	want := []string{
		"GET /api/tenants/{tenant}/byok", "PUT /api/tenants/{tenant}/byok", "DELETE /api/tenants/{tenant}/byok",
		"POST /api/tenants/{tenant}/byok/validate",
		"GET /api/tenants/{tenant}/backups", "GET /api/tenants/{tenant}/backups/{backupId}", "POST /api/tenants/{tenant}/backups",
		"DELETE /api/tenants/{tenant}/backups/{backupId}", "POST /api/tenants/{tenant}/backups/{backupId}/undelete",
		"GET /api/tenants/{tenant}/retention", "PUT /api/tenants/{tenant}/retention",
		"POST /api/tenants/{tenant}/restores", "GET /api/tenants/{tenant}/restores", "GET /api/tenants/{tenant}/restores/{restoreId}",
		"POST /api/tenants/{tenant}/byok/rewraps", "GET /api/tenants/{tenant}/byok/rewraps", "GET /api/tenants/{tenant}/byok/rewraps/{rewrapId}",
	}
	slices.Sort(want)
	slices.Sort(r.routes)
	if !slices.Equal(r.routes, want) {
		t.Errorf("routes = %v\nwant %v", r.routes, want)
	}
	// SettingsPage (API.md §8): anonymous static files.
	if want := []string{"GET /api/ui/"}; !slices.Equal(r.public, want) {
		t.Errorf("public routes = %v, want %v", r.public, want)
	}
}
