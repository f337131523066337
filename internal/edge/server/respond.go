package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"

	"github.com/twinit/byok-backup/internal/errcode"
)

// WriteJSON writes v as JSON with status and Content-Type application/json.
// If v can't be encoded it answers API.md's Internal error instead.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		code, msg := errcode.Public(err)
		b, _ = json.Marshal(errcode.Body{Error: errcode.Detail{Code: code, Message: msg}})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeError maps err to its status through errcode.Status and writes the
// contract's error body. Only errcode's public code and message leave the
// process; the cause of a 5xx is logged (log carries the request id).
func writeError(w http.ResponseWriter, log *slog.Logger, err error) {
	code, msg := errcode.Public(err)
	status := errcode.Status(code)
	if status >= 500 {
		log.Error("request failed", "code", code, "err", err)
	} else {
		log.Info("request refused", "code", code, "status", status)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	WriteJSON(w, status, errcode.Body{Error: errcode.Detail{Code: code, Message: msg}})
}

// MaxBodyBytes is the request body limit of [DecodeJSON].
const MaxBodyBytes = 64 << 10

// ErrEmptyBody is the cause when [DecodeJSON] finds no body; handlers whose
// body is optional check errors.Is(err, ErrEmptyBody).
var ErrEmptyBody = errors.New("server: empty request body")

// DecodeJSON decodes the request's JSON body into v: at most MaxBodyBytes,
// Content-Type application/json, no unknown fields, one value. Every
// failure is an InvalidRequest *errcode.Error.
func DecodeJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return errcode.Wrap(err, errcode.InvalidRequest, "The request body could not be read: send it again.")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return errcode.Wrap(ErrEmptyBody, errcode.InvalidRequest, "The request needs a JSON body.")
	}
	if len(body) > MaxBodyBytes {
		return errcode.New(errcode.InvalidRequest, "The request body is larger than %d KiB: send a smaller body.", MaxBodyBytes>>10)
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return errcode.Wrap(err, errcode.InvalidRequest, "The request body must be JSON: send Content-Type: application/json.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errcode.Wrap(err, errcode.InvalidRequest, "The request body is not valid: %s.", describeJSONError(err))
	}
	if dec.More() {
		return errcode.New(errcode.InvalidRequest, "The request body must hold exactly one JSON object.")
	}
	return nil
}

// describeJSONError turns a decoding error into a caller-safe phrase that
// names the field, never echoing the body.
func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %q must be a %s", typ.Field, typ.Type.String())
		}
		return fmt.Sprintf("a value must be a %s", typ.Type.String())
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends early"
	}
	// json: unknown field "x"
	const prefix = "json: unknown field "
	if s := err.Error(); len(s) > len(prefix) && s[:len(prefix)] == prefix {
		field := s[len(prefix):]
		if len(field) > 66 {
			field = field[:64] + `…"`
		}
		return "unknown field " + field
	}
	return "it is not the expected JSON"
}
