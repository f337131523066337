package api

import (
	"net/http"

	"github.com/twinit/byok-backup/internal/backup"
	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/edge/server"
	"github.com/twinit/byok-backup/internal/retention"
)

// Retention registers GET/PUT /api/tenants/{tenant}/retention (API.md §6).
func Retention(handle HandleAPI, svc *backup.Service) {
	a := retentionAPI{svc}
	handle("GET /api/tenants/{tenant}/retention", auth.PermRead, a.get)
	handle("PUT /api/tenants/{tenant}/retention", auth.PermOperate, a.put)
}

type retentionAPI struct{ svc *backup.Service }

// retentionBody is the PUT body: the policy, and source, which is ignored
// on input (a client may send back what GET returned).
type retentionBody struct {
	retention.Policy
	Source string `json:"source"`
}

func (a retentionAPI) get(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	got, err := a.svc.GetRetention(r.Context(), r.PathValue("tenant"))
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, got)
	return nil
}

// put replaces the whole policy: absent counts are 0; negative numbers,
// non-integers and unknown fields are InvalidRequest (DecodeJSON refuses
// the last two).
func (a retentionAPI) put(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var body retentionBody
	if err := server.DecodeJSON(r, &body); err != nil {
		return err
	}
	got, err := a.svc.PutRetention(r.Context(), r.PathValue("tenant"), body.Policy)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, got)
	return nil
}
