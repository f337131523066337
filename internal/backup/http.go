package backup

import (
	"errors"
	"net/http"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/edge/server"
	"github.com/twinit/byok-backup/internal/errcode"
)

// Install registers the Backups routes (contract §2 "Backups") with
// handleAPI, the server's HandleAPI, which authenticates, checks the
// tenant and the permission, and maps returned errors to the contract's
// error body.
func (s *Service) Install(handleAPI func(pattern string, perm auth.Permission, h server.APIHandler)) {
	handleAPI("GET /api/tenants/{tenant}/backups", auth.PermRead, s.list)
	handleAPI("GET /api/tenants/{tenant}/backups/{backupId}", auth.PermRead, s.get)
	handleAPI("POST /api/tenants/{tenant}/backups", auth.PermOperate, s.start)
}

// list: GET …/backups[?maxResults=N&continuationToken=T], newest first.
func (s *Service) list(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	opts, err := catalog.ParseListQuery(r.URL.Query())
	if err != nil {
		return err
	}
	page, err := s.o.Catalog.ListBackups(r.Context(), r.PathValue("tenant"), opts)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, page)
	return nil
}

// get: GET …/backups/{backupId}.
func (s *Service) get(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	id := r.PathValue("backupId")
	if !catalog.ValidID(id) {
		return errcode.New(errcode.InvalidRequest, "The backup id in the path is not valid: use an id returned by the Backups API.")
	}
	b, err := s.o.Catalog.GetBackup(r.Context(), r.PathValue("tenant"), id)
	if errors.Is(err, catalog.ErrNotFound) {
		return errcode.Wrap(err, errcode.BackupNotFound, "No backup %s exists for this tenant.", id)
	}
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, b)
	return nil
}

// start: POST …/backups (no body, or an empty JSON object) → 202 with the
// new backup, or with the tenant's queued or running one (contract §2).
func (s *Service) start(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	if err := server.DecodeJSON(r, &struct{}{}); err != nil && !errors.Is(err, server.ErrEmptyBody) {
		return errcode.Wrap(err, errcode.InvalidRequest, "POST /backups takes no body (or an empty JSON object).")
	}
	tenant := r.PathValue("tenant")
	b, _, err := s.RequestOnce(r.Context(), tenant)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/tenants/"+tenant+"/backups/"+b.BackupID)
	server.WriteJSON(w, http.StatusAccepted, map[string]string{"backupId": b.BackupID, "status": string(b.Status)})
	return nil
}
