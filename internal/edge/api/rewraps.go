package api

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/edge/invoke"
	"github.com/twinit/byok-backup/internal/edge/server"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/jobqueue"
	"github.com/twinit/byok-backup/internal/keywrap"
	"github.com/twinit/byok-backup/internal/rewrap"
)

// Rewraps registers the Rewraps routes (API.md §7): POST needs
// byok.admin, GET byok.read. A nil svc registers nothing (the routes are
// then unknown).
func Rewraps(handle HandleAPI, svc *rewrap.Service) {
	a := rewrapsAPI{svc}
	handle("POST /api/tenants/{tenant}/byok/rewraps", auth.PermAdmin, a.post)
	handle("GET /api/tenants/{tenant}/byok/rewraps", auth.PermRead, a.list)
	handle("GET /api/tenants/{tenant}/byok/rewraps/{rewrapId}", auth.PermRead, a.get)
}

type rewrapsAPI struct{ svc *rewrap.Service }

// rewrapRequest is the body of POST …/byok/rewraps; an empty body is the
// defaults (to the customer key, no platform backups, not a dry run).
type rewrapRequest struct {
	To                     string `json:"to"`
	IncludePlatformBackups bool   `json:"includePlatformBackups"`
	DryRun                 bool   `json:"dryRun"`
}

type rewrapResponse struct {
	RewrapID string `json:"rewrapId"`
	State    string `json:"state"`
}

func unwired() error {
	return errcode.New(errcode.ServiceUnavailable, "Re-wraps are not available.")
}

func (a rewrapsAPI) post(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	if a.svc == nil {
		return unwired()
	}
	tenant := r.PathValue("tenant")
	var req rewrapRequest
	if r.ContentLength != 0 {
		if err := server.DecodeJSON(r, &req); err != nil {
			return err
		}
	}
	row, err := a.svc.Start(r.Context(), tenant, rewrap.Request{To: keywrap.Source(req.To), IncludePlatformBackups: req.IncludePlatformBackups, DryRun: req.DryRun})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/tenants/"+tenant+"/byok/rewraps/"+row.RewrapID)
	server.WriteJSON(w, http.StatusAccepted, rewrapResponse{RewrapID: row.RewrapID, State: string(row.State)})
	return nil
}

func (a rewrapsAPI) list(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	if a.svc == nil {
		return unwired()
	}
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

func (a rewrapsAPI) get(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	if a.svc == nil {
		return unwired()
	}
	row, err := a.svc.Get(r.Context(), r.PathValue("tenant"), r.PathValue("rewrapId"))
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, row)
	return nil
}

// RewrapWorker is the RewrapWorker queue function: it decodes a
// `rewrap-jobs` message and runs [rewrap.Service.RunJob]. A nil svc
// leaves the function unwired.
func RewrapWorker(svc *rewrap.Service, log *slog.Logger) server.QueueFunc {
	if svc == nil {
		return nil
	}
	return func(ctx context.Context, req *invoke.QueueRequest) error {
		job, err := jobqueue.DecodeRewrapJob(req.Message.Text)
		if err != nil {
			log.ErrorContext(ctx, "rewrap job message is invalid; it will end in the poison queue", "messageId", req.Message.ID, "err", err)
			return errcode.Wrap(err, errcode.InvalidRequest, "The re-wrap job message is malformed.")
		}
		return svc.RunJob(ctx, job, delivery(req))
	}
}
