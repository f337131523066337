package kvemu

import (
	"net"
	"net/http"
	"strings"
)

const controlHost = "control"

// ServeHTTP runs the request pipeline described in the package doc.
func (e *Emulator) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	rec := Request{Method: r.Method, Path: r.URL.Path, At: e.now()}
	w := &statusWriter{ResponseWriter: rw}
	logged := false
	defer func() {
		if !logged {
			rec.Status = w.status
			e.logRequest(rec)
		}
	}()
	// A hang-up is logged before the connection closes: the client sees
	// the close at once, and a test reading the log then must find it.
	hangUpLogged := func() {
		logged = true
		e.logRequest(rec)
		hangUp(w)
	}

	vaultName, isVault := strings.CutSuffix(host, ".localhost")
	if (isVault && vaultName == controlHost) || strings.HasPrefix(r.URL.Path, controlPrefix) {
		rec.Vault, rec.Op = vaultName, "control"
		e.serveControl(w, r, &rec)
		return
	}
	rec.Vault = vaultName
	e.mu.Lock()
	v := e.vaults[vaultName]
	e.mu.Unlock()
	if !isVault || strings.Contains(vaultName, ".") || v == nil {
		// Like NXDOMAIN for <name>.vault.azure.net: no HTTP answer at all.
		hangUpLogged()
		return
	}
	down, latency := e.connFault(vaultName)
	if down {
		hangUpLogged()
		return
	}
	e.sleep(r.Context(), latency)

	token, present := bearer(r)
	if !present {
		// The probe azkeys sends first has no body; never read it.
		rec.Op = "challenge"
		challenge(w, v.tenant, errorf(http.StatusUnauthorized, "Unauthorized", "",
			"AKV10000: Request is missing a Bearer or PoP token."))
		return
	}
	c, ok := parseToken(token)
	if !ok {
		challenge(w, v.tenant, errorf(http.StatusUnauthorized, "Unauthorized", "",
			"AKV10022: Invalid token: the emulator accepts emulator.admin, emulator.platform or emulator.<applicationId>.<tenantId>."))
		return
	}
	rec.Caller = c.id
	if c.tenant != "" && !strings.EqualFold(c.tenant, v.tenant) {
		challenge(w, v.tenant, errorf(http.StatusUnauthorized, "Unauthorized", "",
			"AKV10032: Invalid issuer. Expected one of https://sts.windows.net/%s/, found https://sts.windows.net/%s/.", v.tenant, c.tenant))
		return
	}
	// Route first so that the log names the operation even when a fault answers.
	rt, routeErr := parseRoute(r.Method, r.URL.Path)
	rec.Op = rt.op
	if aerr, retryAfter := e.takeFault(vaultName); aerr != nil {
		if retryAfter {
			w.Header().Set("Retry-After", "1")
		}
		writeError(w, aerr)
		return
	}
	if aerr := checkAPIVersion(r.URL.Query().Get("api-version")); aerr != nil {
		writeError(w, aerr)
		return
	}
	if routeErr != nil {
		writeError(w, routeErr)
		return
	}
	if aerr := e.authorize(v, c, rt.op); aerr != nil {
		writeError(w, aerr)
		return
	}
	status, body, aerr := e.handle(r, v, rt)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	if body == nil {
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, body)
}

// hangUp closes the client connection without writing a response.
func hangUp(w http.ResponseWriter) {
	if hj, ok := w.(*statusWriter).ResponseWriter.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func checkAPIVersion(v string) *apiError {
	if v == "2025-07-01" || (strings.HasPrefix(v, "7.") && len(v) == 3 && v[2] >= '0' && v[2] <= '9') {
		return nil
	}
	if v == "" {
		return badParameter("The api-version query parameter is required. Use 2025-07-01.")
	}
	return badParameter("The specified version (%s) is not recognized. Consider using the latest supported version (2025-07-01).", v)
}

// authorize checks the caller's grant for op on the vault.
func (e *Emulator) authorize(v *vault, c caller, op string) *apiError {
	if c.admin {
		return nil
	}
	e.mu.Lock()
	allowed := v.grants[c.id][op]
	e.mu.Unlock()
	if allowed {
		return nil
	}
	if v.model == RBAC {
		return errorf(http.StatusForbidden, "Forbidden", "ForbiddenByRbac",
			"Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid=%s;iss=https://sts.windows.net/%s/\r\nAction: '%s'\r\nResource: '/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/emulator/providers/microsoft.keyvault/vaults/%s'\r\nAssignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: null \r\nVault: %s;location=local\r\n",
			c.appOrID(), v.tenant, rbacAction(op), v.name, v.name)
	}
	return errorf(http.StatusForbidden, "Forbidden", "ForbiddenByPolicy",
		"The user, group or application 'appid=%s;iss=https://sts.windows.net/%s/' does not have keys %s permission on key vault '%s;location=local'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287",
		c.appOrID(), v.tenant, strings.ToLower(op), v.name)
}

func (c caller) appOrID() string {
	if c.app != "" {
		return c.app
	}
	return c.id
}

func rbacAction(op string) string {
	switch op {
	case "get", "list":
		return "Microsoft.KeyVault/vaults/keys/read"
	case "wrapKey":
		return "Microsoft.KeyVault/vaults/keys/wrap/action"
	case "unwrapKey":
		return "Microsoft.KeyVault/vaults/keys/unwrap/action"
	case "create", "import":
		return "Microsoft.KeyVault/vaults/keys/" + op + "/action"
	case "update":
		return "Microsoft.KeyVault/vaults/keys/write"
	case "delete":
		return "Microsoft.KeyVault/vaults/keys/delete"
	}
	return "Microsoft.KeyVault/vaults/keys/" + strings.ToLower(op) + "/action"
}
