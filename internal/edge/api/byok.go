package api

import (
	"errors"
	"net/http"

	"github.com/twinit/byok-backup/internal/byok"
	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/edge/server"
	"github.com/twinit/byok-backup/internal/errcode"
)

// Byok registers the ByokSettings and ByokValidate routes (API.md §2).
//
// Responses with the status document carry an ETag; PUT and DELETE accept
// it in If-Match and answer 409 Conflict when the settings changed since.
func Byok(handle HandleAPI, svc *byok.Service) {
	a := byokAPI{svc}
	handle("GET /api/tenants/{tenant}/byok", auth.PermRead, a.getSettings)
	handle("PUT /api/tenants/{tenant}/byok", auth.PermAdmin, a.putSettings)
	handle("DELETE /api/tenants/{tenant}/byok", auth.PermAdmin, a.deleteSettings)
	handle("POST /api/tenants/{tenant}/byok/validate", auth.PermAdmin, a.postValidate)
}

type byokAPI struct{ svc *byok.Service }

// byokRequest is the body of PUT /api/tenants/{tenant}/byok and, optionally,
// of POST …/byok/validate (API.md §2).
type byokRequest struct {
	KeyVaultName string `json:"keyVaultName"`
	KeyName      string `json:"keyName"`
	TenantID     string `json:"tenantId"`
	KeyVersion   string `json:"keyVersion,omitempty"`
	// FallbackToPlatformKey defaults to true when omitted.
	FallbackToPlatformKey *bool `json:"fallbackToPlatformKey,omitempty"`
}

// settings returns the request as byok.Settings, checked: every field is
// validated before anything leaves for the network.
func (r byokRequest) settings() (byok.Settings, error) {
	set := byok.Settings{
		KeyVaultName: r.KeyVaultName, KeyName: r.KeyName, TenantID: r.TenantID, KeyVersion: r.KeyVersion,
		FallbackToPlatformKey: r.FallbackToPlatformKey == nil || *r.FallbackToPlatformKey,
	}
	return set, set.Check()
}

func (a byokAPI) getSettings(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	st, err := a.svc.Status(r.Context(), r.PathValue("tenant"))
	if err != nil {
		return err
	}
	writeStatus(w, st)
	return nil
}

func (a byokAPI) putSettings(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	var req byokRequest
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	set, err := req.settings()
	if err != nil {
		return err
	}
	st, err := a.svc.Configure(r.Context(), r.PathValue("tenant"), set, r.Header.Get("If-Match"))
	retryAfter(w, err)
	if ve := (*byok.ValidationError)(nil); errors.As(err, &ve) {
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

func (a byokAPI) deleteSettings(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	st, err := a.svc.Disable(r.Context(), r.PathValue("tenant"), r.Header.Get("If-Match"))
	if err != nil {
		return err
	}
	writeStatus(w, st)
	return nil
}

// postValidate validates the body's settings, or the stored ones when the
// body is empty.
func (a byokAPI) postValidate(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	var set *byok.Settings
	var req byokRequest
	switch err := server.DecodeJSON(r, &req); {
	case errors.Is(err, server.ErrEmptyBody):
	case err != nil:
		return err
	default:
		v, err := req.settings()
		if err != nil {
			return err
		}
		set = &v
	}
	res, err := a.svc.Validate(r.Context(), r.PathValue("tenant"), set)
	retryAfter(w, err)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, res)
	return nil
}

// validationBody is the 422 body: API.md's error plus the checks.
type validationBody struct {
	Error  errcode.Detail     `json:"error"`
	Checks []byok.CheckResult `json:"checks"`
}

func nonNil(c []byok.CheckResult) []byok.CheckResult {
	if c == nil {
		return []byok.CheckResult{}
	}
	return c
}

func writeStatus(w http.ResponseWriter, st byok.Status) {
	w.Header().Set("ETag", st.ETag)
	w.Header().Set("Cache-Control", "no-store")
	server.WriteJSON(w, http.StatusOK, st)
}

// retryAfter sets Retry-After on a throttled answer.
func retryAfter(w http.ResponseWriter, err error) {
	if te := (*byok.ThrottledError)(nil); errors.As(err, &te) {
		w.Header().Set("Retry-After", te.RetryAfterSeconds())
	}
}
