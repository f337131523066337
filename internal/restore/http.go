package restore

import (
	"errors"
	"net/http"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/edge/server"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/jobqueue"
	"github.com/twinit/byok-backup/internal/tenants"
)

// Install registers the Restores routes with handleAPI (the server's
// HandleAPI: it authenticates, checks {tenant} and the permission on it,
// and maps returned errors through errcode's table).
//
// Cross-tenant rule: POST needs backup.operator on the source tenant (the
// route's {tenant}, checked by the server) AND on targetTenant. Tokens are
// tenant-scoped (one tenant claim), so a restore into another tenant needs
// platform.operator in practice.
func (s *Service) Install(handleAPI func(pattern string, perm auth.Permission, h server.APIHandler)) {
	handleAPI("POST /api/tenants/{tenant}/restores", auth.PermOperate, s.post)
	handleAPI("GET /api/tenants/{tenant}/restores", auth.PermRead, s.list)
	handleAPI("GET /api/tenants/{tenant}/restores/{restoreId}", auth.PermRead, s.get)
}

// list: GET …/restores[?maxResults=N&continuationToken=T], newest first,
// with the Backups list's paging rules. It lists the restores whose SOURCE
// is {tenant} (where POST put them, cross-tenant ones included), the same
// rows GET …/restores/{restoreId} reads.
func (s *Service) list(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	opts, err := catalog.ParseListQuery(r.URL.Query())
	if err != nil {
		return err
	}
	page, err := s.o.Catalog.ListRestores(r.Context(), r.PathValue("tenant"), opts)
	if errors.Is(err, catalog.ErrInvalidToken) {
		return err
	}
	if err != nil {
		return errcode.Wrap(err, errcode.ServiceUnavailable, "The restores could not be listed: try again later.")
	}
	server.WriteJSON(w, http.StatusOK, page)
	return nil
}

// Request is the body of POST /api/tenants/{tenant}/restores.
type Request struct {
	BackupID     string `json:"backupId"`
	TargetTenant string `json:"targetTenant"`
	Mode         string `json:"mode"`
	DryRun       bool   `json:"dryRun"`
}

// check validates the request for source tenant and returns the target.
func (q Request) check(tenant string) (target string, mode catalog.Mode, err error) {
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

func (s *Service) post(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	ctx := r.Context()
	tenant := r.PathValue("tenant")
	var req Request
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
	b, err := s.o.Catalog.GetBackup(ctx, tenant, req.BackupID)
	if errors.Is(err, catalog.ErrNotFound) {
		return errcode.Wrap(err, errcode.BackupNotFound, "Tenant %s has no backup %s: list its backups for the ids.", tenant, req.BackupID)
	}
	if err != nil {
		return errcode.Wrap(err, errcode.ServiceUnavailable, "The backup catalog could not be read: try again later.")
	}
	if !b.Restorable() {
		return errcode.New(errcode.BackupIncomplete, "Backup %s is %s, not completed: only completed backups can be restored or verified.", b.BackupID, b.Status)
	}
	row := catalog.NewRestore(tenant, req.BackupID, target, mode, req.DryRun, s.now())
	if err := s.o.Catalog.CreateRestore(ctx, row); err != nil {
		return errcode.Wrap(err, errcode.ServiceUnavailable, "The restore could not be recorded: try again later.")
	}
	if err := s.o.Queue.Enqueue(ctx, s.o.QueueName, jobqueue.RestoreJob{Tenant: tenant, RestoreID: row.RestoreID}); err != nil {
		// No message will ever run it: record that rather than leave it queued.
		if ferr := row.Fail(s.now(), errcode.Detail{Code: errcode.ServiceUnavailable, Message: "The restore could not be queued. Start it again."}); ferr == nil {
			_ = s.o.Catalog.UpdateRestore(ctx, row)
		}
		return errcode.Wrap(err, errcode.ServiceUnavailable, "The restore could not be queued: try again later.")
	}
	s.log.InfoContext(ctx, "restore requested", "tenant", tenant, "restoreId", row.RestoreID, "backupId", row.BackupID,
		"targetTenant", target, "mode", mode, "dryRun", req.DryRun, "subject", p.Subject)
	w.Header().Set("Location", "/api/tenants/"+tenant+"/restores/"+row.RestoreID)
	server.WriteJSON(w, http.StatusAccepted, map[string]string{"restoreId": row.RestoreID, "state": string(row.State)})
	return nil
}

func (s *Service) get(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	tenant, id := r.PathValue("tenant"), r.PathValue("restoreId")
	if !catalog.ValidID(id) {
		return errcode.New(errcode.InvalidRequest, "The restoreId in the path is not a restore id: use the restoreId returned by POST.")
	}
	row, err := s.o.Catalog.GetRestore(r.Context(), tenant, id)
	if errors.Is(err, catalog.ErrNotFound) {
		return errcode.Wrap(err, errcode.NotFound, "Tenant %s has no restore %s.", tenant, id)
	}
	if err != nil {
		return errcode.Wrap(err, errcode.ServiceUnavailable, "The restore could not be read: try again later.")
	}
	server.WriteJSON(w, http.StatusOK, row)
	return nil
}
