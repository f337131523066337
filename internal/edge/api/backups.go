package api

import (
	"errors"
	"net/http"

	"github.com/twinit/byok-backup/internal/backup"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/edge/server"
	"github.com/twinit/byok-backup/internal/errcode"
)

// Backups registers the Backups routes (API.md §2 "Backups").
func Backups(handle HandleAPI, svc *backup.Service) {
	b := backupsAPI{svc}
	handle("GET /api/tenants/{tenant}/backups", auth.PermRead, b.list)
	handle("GET /api/tenants/{tenant}/backups/{backupId}", auth.PermRead, b.get)
	handle("POST /api/tenants/{tenant}/backups", auth.PermOperate, b.start)
	// Soft delete and undelete (API.md §6).
	handle("DELETE /api/tenants/{tenant}/backups/{backupId}", auth.PermOperate, b.delete)
	handle("POST /api/tenants/{tenant}/backups/{backupId}/undelete", auth.PermOperate, b.undelete)
}

type backupsAPI struct{ svc *backup.Service }

// list: GET …/backups[?maxResults=N&continuationToken=T], newest first.
func (b backupsAPI) list(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	opts, err := catalog.ParseListQuery(r.URL.Query())
	if err != nil {
		return err
	}
	page, err := b.svc.List(r.Context(), r.PathValue("tenant"), opts)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, page)
	return nil
}

// pathID is the {backupId} of the path, checked.
func pathID(r *http.Request) (string, error) {
	id := r.PathValue("backupId")
	if !catalog.ValidID(id) {
		return "", errcode.New(errcode.InvalidRequest, "The backup id in the path is not valid: use an id returned by the Backups API.")
	}
	return id, nil
}

// delete: DELETE …/backups/{backupId} soft-deletes a completed backup.
func (b backupsAPI) delete(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	row, err := b.svc.Delete(r.Context(), r.PathValue("tenant"), id, p.Subject)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, row)
	return nil
}

// undelete: POST …/backups/{backupId}/undelete (no body).
func (b backupsAPI) undelete(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if err := server.DecodeJSON(r, &struct{}{}); err != nil && !errors.Is(err, server.ErrEmptyBody) {
		return errcode.Wrap(err, errcode.InvalidRequest, "POST …/undelete takes no body (or an empty JSON object).")
	}
	id, err := pathID(r)
	if err != nil {
		return err
	}
	row, err := b.svc.Undelete(r.Context(), r.PathValue("tenant"), id, p.Subject)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, row)
	return nil
}

// get: GET …/backups/{backupId}.
func (b backupsAPI) get(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	row, err := b.svc.Get(r.Context(), r.PathValue("tenant"), id)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, row)
	return nil
}

// startResponse is the 202 body of POST …/backups.
type startResponse struct {
	BackupID string `json:"backupId"`
	Status   string `json:"status"`
}

// start: POST …/backups (no body, or an empty JSON object) → 202 with the
// new backup, or with the tenant's queued or running one (API.md §2).
func (b backupsAPI) start(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	if err := server.DecodeJSON(r, &struct{}{}); err != nil && !errors.Is(err, server.ErrEmptyBody) {
		return errcode.Wrap(err, errcode.InvalidRequest, "POST /backups takes no body (or an empty JSON object).")
	}
	tenant := r.PathValue("tenant")
	row, _, err := b.svc.RequestOnce(r.Context(), tenant)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/tenants/"+tenant+"/backups/"+row.BackupID)
	server.WriteJSON(w, http.StatusAccepted, startResponse{BackupID: row.BackupID, Status: string(row.Status)})
	return nil
}
