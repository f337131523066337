package kvemu

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// controlPrefix is the control API's path prefix on any host; on host
// "control.localhost" the prefix is optional.
const controlPrefix = "/_emulator/"

// The control API lets a process other than the emulator's flip grants,
// keys and faults (a local demo, a script). Every call needs the admin
// token. Bodies and answers are JSON; errors use the service's error shape.
//
//	POST   /_emulator/vaults        {"name","tenantId","permissionModel":"accessPolicy"|"rbac"}
//	POST   /_emulator/grant         {"vault","caller","ops":["get","wrapKey","unwrapKey"]}
//	POST   /_emulator/revoke        {"vault","caller"}
//	POST   /_emulator/keys          {"vault","name","kty","size","ops","tags"} -> {"kid"}
//	POST   /_emulator/keys/rotate   {"vault","name"}                           -> {"kid"}
//	POST   /_emulator/keys/enabled  {"vault","name","version","enabled"}
//	POST   /_emulator/keys/ops      {"vault","name","version","ops"}
//	POST   /_emulator/keys/expiry   {"vault","name","version","nbf","exp"}     (Unix seconds, 0 = unset)
//	POST   /_emulator/keys/tags     {"vault","name","version","tags"}         (replaces the version's tags)
//	POST   /_emulator/keys/delete   {"vault","name"}
//	POST   /_emulator/fault         {"vault","latency":"250ms","throttle","retryAfter","serverError","serverCode","down"}
//	GET    /_emulator/requests      -> [{"vault","method","path","caller","op","status","at"}]
//	DELETE /_emulator/requests
type controlRequest struct {
	Vault           string            `json:"vault"`
	Name            string            `json:"name"`
	TenantID        string            `json:"tenantId"`
	PermissionModel string            `json:"permissionModel"`
	Caller          string            `json:"caller"`
	Ops             []string          `json:"ops"`
	Kty             string            `json:"kty"`
	Size            int               `json:"size"`
	Version         string            `json:"version"`
	Tags            map[string]string `json:"tags"`
	Enabled         *bool             `json:"enabled"`
	NotBefore       int64             `json:"nbf"`
	Expires         int64             `json:"exp"`
	Latency         string            `json:"latency"`
	Throttle        int               `json:"throttle"`
	RetryAfter      bool              `json:"retryAfter"`
	ServerError     int               `json:"serverError"`
	ServerCode      int               `json:"serverCode"`
	Down            bool              `json:"down"`
}

type controlRequestLog struct {
	Vault  string    `json:"vault"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Caller string    `json:"caller"`
	Op     string    `json:"op"`
	Status int       `json:"status"`
	At     time.Time `json:"at"`
}

// ParsePermissionModel reads "accessPolicy" (or "") and "rbac", any case.
func ParsePermissionModel(s string) (PermissionModel, error) {
	switch strings.ToLower(s) {
	case "", "accesspolicy", "access-policy", "policy":
		return AccessPolicy, nil
	case "rbac":
		return RBAC, nil
	}
	return 0, fmt.Errorf("kvemu: unknown permission model %q (use accessPolicy or rbac)", s)
}

func (e *Emulator) serveControl(w http.ResponseWriter, r *http.Request, rec *Request) {
	token, _ := bearer(r)
	if c, ok := parseToken(token); !ok || !c.admin {
		writeError(w, errorf(http.StatusUnauthorized, "Unauthorized", "", "The control API needs the bearer token %s.", AdminToken))
		return
	}
	rec.Caller = "admin"
	path := "/" + strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/"), strings.TrimPrefix(controlPrefix, "/"))
	if r.Method == http.MethodGet && path == "/requests" {
		reqs := e.Requests()
		out := make([]controlRequestLog, len(reqs))
		for i, q := range reqs {
			out[i] = controlRequestLog(q)
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	if r.Method == http.MethodDelete && path == "/requests" {
		e.ResetRequests()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.Method != http.MethodPost {
		writeError(w, errorf(http.StatusMethodNotAllowed, "MethodNotAllowed", "", "The control API takes POST (GET/DELETE for /requests)."))
		return
	}
	var q controlRequest
	if aerr := decodeBody(r, &q); aerr != nil {
		writeError(w, aerr)
		return
	}
	result, err := e.control(path, q)
	if err != nil {
		writeError(w, badParameter("%s", err.Error()))
		return
	}
	writeJSON(w, http.StatusOK, result)
}

func (e *Emulator) control(path string, q controlRequest) (map[string]any, error) {
	ok := map[string]any{"ok": true}
	switch path {
	case "/vaults":
		m, err := ParsePermissionModel(q.PermissionModel)
		if err != nil {
			return nil, err
		}
		return ok, e.CreateVault(q.Name, q.TenantID, m)
	case "/grant":
		return ok, e.Grant(q.Vault, q.Caller, q.Ops...)
	case "/revoke":
		return ok, e.Revoke(q.Vault, q.Caller)
	case "/keys":
		kid, err := e.CreateKey(q.Vault, q.Name, q.Kty, q.Size, q.Ops)
		if err == nil && q.Tags != nil {
			err = e.SetTags(q.Vault, q.Name, "", q.Tags)
		}
		return map[string]any{"kid": kid}, err
	case "/keys/rotate":
		kid, err := e.RotateKey(q.Vault, q.Name)
		return map[string]any{"kid": kid}, err
	case "/keys/enabled":
		if q.Enabled == nil {
			return nil, fmt.Errorf("kvemu: enabled is required")
		}
		return ok, e.SetEnabled(q.Vault, q.Name, q.Version, *q.Enabled)
	case "/keys/ops":
		return ok, e.SetKeyOps(q.Vault, q.Name, q.Version, q.Ops)
	case "/keys/expiry":
		return ok, e.SetExpiry(q.Vault, q.Name, q.Version, unixTime(q.NotBefore), unixTime(q.Expires))
	case "/keys/tags":
		return ok, e.SetTags(q.Vault, q.Name, q.Version, q.Tags)
	case "/keys/delete":
		return ok, e.DeleteKey(q.Vault, q.Name)
	case "/fault":
		f := Fault{Throttle: q.Throttle, RetryAfter: q.RetryAfter, ServerError: q.ServerError, ServerCode: q.ServerCode, Down: q.Down}
		if q.Latency != "" {
			d, err := time.ParseDuration(q.Latency)
			if err != nil || d < 0 {
				return nil, fmt.Errorf("kvemu: latency %q is not a duration like 250ms", q.Latency)
			}
			f.Latency = d
		}
		e.SetFault(q.Vault, f)
		return ok, nil
	}
	return nil, fmt.Errorf("kvemu: unknown control path %s", path)
}

func unixTime(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0)
}
