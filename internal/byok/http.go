package byok

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/twinit/byok-backup/internal/errcode"
)

// maxBody bounds a settings request body; the real ones are ~300 bytes.
const maxBody = 16 << 10

// getSettings is GET /api/tenants/{tenant}/byok.
func (s *Service) getSettings(w http.ResponseWriter, r *http.Request) error {
	st, err := s.Status(r.Context(), r.PathValue("tenant"))
	if err != nil {
		return err
	}
	return writeStatus(w, st)
}

// putSettings is PUT /api/tenants/{tenant}/byok.
func (s *Service) putSettings(w http.ResponseWriter, r *http.Request) error {
	var req Request
	present, err := decodeBody(w, r, &req)
	if err != nil {
		return err
	}
	if !present {
		return errcode.New(errcode.InvalidRequest, "The request has no body: send keyVaultName, keyName and tenantId as JSON.")
	}
	set, err := req.Settings()
	if err != nil {
		return err
	}
	st, err := s.Configure(r.Context(), r.PathValue("tenant"), set, r.Header.Get("If-Match"))
	if ve := (*ValidationError)(nil); errors.As(err, &ve) {
		return writeJSON(w, errcode.Status(ve.Err.Code), validationBody{
			Error:  errcode.Detail{Code: ve.Err.Code, Message: ve.Err.Message},
			Checks: nonNil(ve.Checks),
		})
	}
	if err != nil {
		return err
	}
	return writeStatus(w, st)
}

// deleteSettings is DELETE /api/tenants/{tenant}/byok.
func (s *Service) deleteSettings(w http.ResponseWriter, r *http.Request) error {
	st, err := s.Disable(r.Context(), r.PathValue("tenant"), r.Header.Get("If-Match"))
	if err != nil {
		return err
	}
	return writeStatus(w, st)
}

// postValidate is POST /api/tenants/{tenant}/byok/validate.
func (s *Service) postValidate(w http.ResponseWriter, r *http.Request) error {
	var req Request
	present, err := decodeBody(w, r, &req)
	if err != nil {
		return err
	}
	var set *Settings
	if present {
		v, err := req.Settings()
		if err != nil {
			return err
		}
		set = &v
	}
	res, err := s.Validate(r.Context(), r.PathValue("tenant"), set)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
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

func writeStatus(w http.ResponseWriter, st Status) error {
	w.Header().Set("ETag", st.ETag)
	return writeJSON(w, http.StatusOK, st)
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("failed to encode the response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, err = w.Write(append(body, '\n'))
	return err
}

// decodeBody decodes a JSON object strictly (no unknown fields, nothing
// after it). present is false when the body is empty.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) (present bool, err error) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return false, errcode.Wrap(err, errcode.InvalidRequest, "The request body is larger than %d bytes.", maxBody)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return false, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return false, errcode.Wrap(err, errcode.InvalidRequest, "The request body is not a valid settings object: %s.", jsonProblem(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return false, errcode.New(errcode.InvalidRequest, "The request body has data after the JSON object: send one object.")
	}
	return true, nil
}

// jsonProblem describes a decoding error without echoing the body.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q must be a %s", typ.Field, typ.Type)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends early"
	default:
		// DisallowUnknownFields reports `json: unknown field "x"`; the
		// field name is the caller's own input and safe to show.
		return err.Error()
	}
}
