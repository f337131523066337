package kvemu

import (
	"net/http"
	"strings"
)

// AdminToken is the vault owner's bearer token: allowed everything on every
// vault, used to manage keys through azkeys like a customer admin would.
const AdminToken = "emulator.admin"

// PlatformToken is the platform identity's bearer token.
const PlatformToken = "emulator.platform"

const tokenPrefix = "emulator."

// CustomerToken is the bearer token of a customer application signed in to
// an Entra tenant: "emulator.<applicationID>.<entraTenantID>".
func CustomerToken(applicationID, entraTenantID string) string {
	return tokenPrefix + applicationID + "." + entraTenantID
}

// caller is an authenticated bearer.
type caller struct {
	id     string // token without "emulator."
	admin  bool
	tenant string // Entra tenant of a customer token; "" for admin and platform
	app    string
}

// parseToken reads an emulator token. ok is false for anything else.
func parseToken(token string) (c caller, ok bool) {
	id, found := strings.CutPrefix(token, tokenPrefix)
	if !found || id == "" {
		return caller{}, false
	}
	switch id {
	case "admin":
		return caller{id: id, admin: true}, true
	case "platform":
		return caller{id: id}, true
	}
	// Application ids and tenant ids are GUIDs (no dots); split at the last dot
	// so an odd application id still leaves the tenant intact.
	i := strings.LastIndexByte(id, '.')
	if i <= 0 || i == len(id)-1 {
		return caller{}, false
	}
	return caller{id: id, app: id[:i], tenant: id[i+1:]}, true
}

// callerID normalises a token or a caller id to the caller id.
func callerID(tokenOrID string) string {
	return strings.TrimPrefix(tokenOrID, tokenPrefix)
}

// challenge answers a request without credentials the way Key Vault does,
// naming the vault's tenant so azkeys asks its credential for that tenant.
func challenge(w http.ResponseWriter, tenant string, e *apiError) {
	w.Header().Set("WWW-Authenticate",
		`Bearer authorization="https://login.microsoftonline.com/`+tenant+`", resource="https://vault.azure.net"`)
	writeError(w, e)
}

func bearer(r *http.Request) (token string, present bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	return strings.TrimSpace(tok), true
}
