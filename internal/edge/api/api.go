// Package api is the service's edge (pkgsite's internal/frontend model):
// the forwarded HTTP routes with their JSON bodies and query parsing, and
// the adapters that turn the host's queue and timer invocations into calls
// of the services. The services (backup, restore, byok) expose plain Go
// methods with context first and errcode-typed errors; they import nothing
// under internal/edge, and a layering test (internal/layers_test.go) keeps
// it so.
//
// The routes, bodies, errors and roles are documented in docs/openapi.yaml,
// the project's API reference; TestOpenAPICoversEveryRoute keeps the two in
// step.
//
// Authentication, the {tenant} check and the route's permission are the
// server's ([server.Server.HandleAPI]); rules that need the body (a
// cross-tenant restore needs the right on the target too) are here.
package api

import (
	"log/slog"
	"net/http"

	"github.com/twinit/byok-backup/internal/backup"
	"github.com/twinit/byok-backup/internal/byok"
	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/edge/server"
	"github.com/twinit/byok-backup/internal/edge/ui"
	"github.com/twinit/byok-backup/internal/restore"
	"github.com/twinit/byok-backup/internal/rewrap"
)

// HandleAPI registers one authenticated route: [server.Server.HandleAPI].
type HandleAPI func(pattern string, perm auth.Permission, h server.APIHandler)

// Registrar is where routes and functions are registered: *server.Server.
type Registrar interface {
	HandleAPI(pattern string, perm auth.Permission, h server.APIHandler)
	HandleQueue(name string, fn server.QueueFunc)
	HandleTimer(name string, fn server.TimerFunc)
	HandlePublic(pattern string, h http.Handler)
}

// Services are the services behind the edge.
type Services struct {
	Backups  *backup.Service
	Restores *restore.Service
	Byok     *byok.Service
	Rewraps  *rewrap.Service
	Logger   *slog.Logger // default slog.Default()
}

// Register registers every route and function of API.md §1 on r.
func Register(r Registrar, s Services) {
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	Byok(r.HandleAPI, s.Byok)
	Backups(r.HandleAPI, s.Backups)
	Retention(r.HandleAPI, s.Backups)
	Restores(r.HandleAPI, s.Restores)
	Rewraps(r.HandleAPI, s.Rewraps)
	r.HandleTimer("BackupScheduler", BackupScheduler(s.Backups))
	r.HandleTimer("ByokMonitor", ByokMonitor(s.Byok, s.Backups, s.Restores))
	r.HandleTimer("BackupRetention", BackupRetention(s.Backups))
	r.HandleQueue("BackupWorker", BackupWorker(s.Backups, log))
	r.HandleQueue("RestoreWorker", RestoreWorker(s.Restores, log))
	r.HandleQueue("RewrapWorker", RewrapWorker(s.Rewraps, log))
	// SettingsPage: static files, anonymous (the page signs its API calls).
	r.HandlePublic("GET /api/ui/", ui.Handler())
}
