package byok

import (
	"errors"
	"net/http"

	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/edge/server"
	"github.com/twinit/byok-backup/internal/errcode"
)

// Install registers the ByokSettings and ByokValidate routes with handleAPI
// (the server's HandleAPI, which authenticates, checks the tenant and the
// permission, and maps returned errors through errcode's table).
//
// Responses with the status document carry an ETag; PUT and DELETE accept
// it in If-Match and answer 409 Conflict when the settings changed since.
func (s *Service) Install(handleAPI func(pattern string, perm auth.Permission, h server.APIHandler)) {
	handleAPI("GET /api/tenants/{tenant}/byok", auth.PermRead, s.getSettings)
	handleAPI("PUT /api/tenants/{tenant}/byok", auth.PermAdmin, s.putSettings)
	handleAPI("DELETE /api/tenants/{tenant}/byok", auth.PermAdmin, s.deleteSettings)
	handleAPI("POST /api/tenants/{tenant}/byok/validate", auth.PermAdmin, s.postValidate)
}

func (s *Service) getSettings(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	st, err := s.Status(r.Context(), r.PathValue("tenant"))
	if err != nil {
		return err
	}
	writeStatus(w, st)
	return nil
}

func (s *Service) putSettings(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	var req Request
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	set, err := req.Settings()
	if err != nil {
		return err
	}
	st, err := s.Configure(r.Context(), r.PathValue("tenant"), set, r.Header.Get("If-Match"))
	retryAfter(w, err)
	if ve := (*ValidationError)(nil); errors.As(err, &ve) {
		server.WriteJSON(w, errcode.Status(ve.Err.Code), validationBody{
			Error:  errcode.Detail{Code: ve.Err.Code, Message: ve.Err.Message},
			Checks: nonNil(ve.Checks),
		})
		return nil
	}
	if err != nil {
		return err
	}
	writeStatus(w, st)
	return nil
}

func (s *Service) deleteSettings(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	st, err := s.Disable(r.Context(), r.PathValue("tenant"), r.Header.Get("If-Match"))
	if err != nil {
		return err
	}
	writeStatus(w, st)
	return nil
}

// postValidate validates the body's settings, or the stored ones when the
// body is empty.
func (s *Service) postValidate(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	var set *Settings
	var req Request
	switch err := server.DecodeJSON(r, &req); {
	case errors.Is(err, server.ErrEmptyBody):
	case err != nil:
		return err
	default:
		v, err := req.Settings()
		if err != nil {
			return err
		}
		set = &v
	}
	res, err := s.Validate(r.Context(), r.PathValue("tenant"), set)
	retryAfter(w, err)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, res)
	return nil
}

// validationBody is the 422 body: the contract's error plus the checks.
type validationBody struct {
	Error  errcode.Detail `json:"error"`
	Checks []CheckResult  `json:"checks"`
}

func nonNil(c []CheckResult) []CheckResult {
	if c == nil {
		return []CheckResult{}
	}
	return c
}

func writeStatus(w http.ResponseWriter, st Status) {
	w.Header().Set("ETag", st.ETag)
	w.Header().Set("Cache-Control", "no-store")
	server.WriteJSON(w, http.StatusOK, st)
}

// retryAfter sets Retry-After on a throttled answer.
func retryAfter(w http.ResponseWriter, err error) {
	if te := (*ThrottledError)(nil); errors.As(err, &te) {
		w.Header().Set("Retry-After", te.RetryAfterSeconds())
	}
}
