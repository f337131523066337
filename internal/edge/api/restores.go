package api

import (
	"net/http"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/edge/server"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/restore"
	"github.com/twinit/byok-backup/internal/tenants"
)

// Restores registers the Restores routes (API.md §2 "Restores and
// verification").
//
// Cross-tenant rule: POST needs backup.operator on the source tenant (the
// route's {tenant}, checked by the server) AND on targetTenant. Tokens are
// tenant-scoped (one tenant claim), so a restore into another tenant needs
// platform.operator in practice.
func Restores(handle HandleAPI, svc *restore.Service) {
	a := restoresAPI{svc}
	handle("POST /api/tenants/{tenant}/restores", auth.PermOperate, a.post)
	handle("GET /api/tenants/{tenant}/restores", auth.PermRead, a.list)
	handle("GET /api/tenants/{tenant}/restores/{restoreId}", auth.PermRead, a.get)
}

type restoresAPI struct{ svc *restore.Service }

// list: GET …/restores[?maxResults=N&continuationToken=T], newest first,
// with the Backups list's paging rules. It lists the restores whose SOURCE
// is {tenant}, the same rows GET …/restores/{restoreId} reads.
func (a restoresAPI) list(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	opts, err := catalog.ParseListQuery(r.URL.Query())
	if err != nil {
		return err
	}
	page, err := a.svc.List(r.Context(), r.PathValue("tenant"), opts)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, page)
	return nil
}

// restoreRequest is the body of POST /api/tenants/{tenant}/restores.
type restoreRequest struct {
	BackupID     string `json:"backupId"`
	TargetTenant string `json:"targetTenant"`
	Mode         string `json:"mode"`
	DryRun       bool   `json:"dryRun"`
}

// check validates the request for source tenant and returns the target.
func (q restoreRequest) check(tenant string) (target string, mode catalog.Mode, err error) {
	if !catalog.ValidID(q.BackupID) {
		return "", "", errcode.New(errcode.InvalidRequest, "backupId is missing or not a backup id: use the backupId from the backups list.")
	}
	target = q.TargetTenant
	if target == "" {
		target = tenant
	}
	if !tenants.ValidID(target) {
		return "", "", errcode.New(errcode.InvalidRequest,
			"targetTenant is not a tenant id: use 1 to 63 lower-case letters, digits and hyphens, starting and ending with a letter or digit.")
	}
	mode = catalog.Mode(q.Mode)
	switch {
	case q.Mode == "" && !q.DryRun:
		return "", "", errcode.New(errcode.InvalidRequest, `mode is required unless dryRun is true: use "replace" or "merge".`)
	case q.Mode != "" && !mode.Valid():
		return "", "", errcode.New(errcode.InvalidRequest, `mode must be "replace" or "merge".`)
	}
	return target, mode, nil
}

// restoreResponse is the 202 body of POST …/restores.
type restoreResponse struct {
	RestoreID string `json:"restoreId"`
	State     string `json:"state"`
}

func (a restoresAPI) post(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	tenant := r.PathValue("tenant")
	var req restoreRequest
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	target, mode, err := req.check(tenant)
	if err != nil {
		return err
	}
	if !p.Can(target, auth.PermOperate) {
		return errcode.Wrap(auth.Forbidden(target, auth.PermOperate), errcode.Forbidden,
			"A restore from tenant %s into tenant %s needs the backup.operator role on both tenants (or platform.operator).", tenant, target)
	}
	row, err := a.svc.Start(r.Context(), restore.StartRequest{
		Tenant: tenant, BackupID: req.BackupID, TargetTenant: target, Mode: mode, DryRun: req.DryRun, Subject: p.Subject,
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/tenants/"+tenant+"/restores/"+row.RestoreID)
	server.WriteJSON(w, http.StatusAccepted, restoreResponse{RestoreID: row.RestoreID, State: string(row.State)})
	return nil
}

func (a restoresAPI) get(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	tenant, id := r.PathValue("tenant"), r.PathValue("restoreId")
	if !catalog.ValidID(id) {
		return errcode.New(errcode.InvalidRequest, "The restoreId in the path is not a restore id: use the restoreId returned by POST.")
	}
	row, err := a.svc.Get(r.Context(), tenant, id)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, row)
	return nil
}
