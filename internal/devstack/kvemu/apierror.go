package kvemu

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// apiError is an error answered in the service's shape:
// {"error":{"code","message","innererror":{"code"}}}.
type apiError struct {
	Status  int
	Code    string
	Inner   string
	Message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s/%s: %s", e.Status, e.Code, e.Inner, e.Message)
}

func errorf(status int, code, inner, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Inner: inner, Message: fmt.Sprintf(format, args...)}
}

func badParameter(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, "BadParameter", "", format, args...)
}

func keyNotFound(nameOrID string) *apiError {
	return errorf(http.StatusNotFound, "KeyNotFound", "",
		"A key with (name/id) %s was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182", nameOrID)
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code       string       `json:"code"`
	Message    string       `json:"message"`
	InnerError *errorDetail `json:"innererror,omitempty"`
}

func writeError(w http.ResponseWriter, e *apiError) {
	body := errorBody{Error: errorDetail{Code: e.Code, Message: e.Message}}
	if e.Inner != "" {
		body.Error.InnerError = &errorDetail{Code: e.Inner}
	}
	writeJSON(w, e.Status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic("kvemu: internal error: cannot marshal a response: " + err.Error())
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("x-ms-keyvault-service-version", "1.9.0.0")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
