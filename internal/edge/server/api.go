package server

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"

	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/errcode"
)

// TenantPattern is API.md's tenant id (API.md §3).
var TenantPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

var errNoAuth = errors.New("server: no authenticator configured")

// api wraps an APIHandler: authenticate (401), validate {tenant} (400),
// authorize (403), run with a deadline, and map a returned error through
// the one table.
func (s *Server) api(a apiRoute) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := requestID(r)
		w.Header().Set("X-Request-Id", id)
		log := s.log.With("route", a.pattern, "requestId", id)
		if s.cfg.Auth == nil {
			// Fail closed: a server built without an authenticator serves no API.
			writeError(w, log, errcode.Wrap(errNoAuth, errcode.Internal, "no authenticator"))
			return
		}
		p, err := s.cfg.Auth.Authenticate(r)
		if err != nil {
			if errcode.CodeOf(err) != errcode.Unauthorized {
				// An authenticator failing for another reason (e.g. keys
				// unavailable) is not the caller's fault, but still no access.
				err = errcode.Wrap(err, errcode.Unauthorized, "The bearer token could not be verified: try again later.")
			}
			writeError(w, log, err)
			return
		}
		tenant := r.PathValue("tenant")
		if tenant != "" || hasTenantWildcard(a.pattern) {
			if !TenantPattern.MatchString(tenant) {
				writeError(w, log, errcode.New(errcode.InvalidRequest,
					"The tenant id in the path is not valid: use 1 to 63 lower-case letters, digits and hyphens, starting and ending with a letter or digit."))
				return
			}
			if !p.Can(tenant, a.perm) {
				writeError(w, log, auth.Forbidden(tenant, a.perm))
				return
			}
		} else if !p.IsPlatformOperator() {
			// Routes without a tenant are platform-wide.
			writeError(w, log, auth.Forbidden("(all tenants)", a.perm))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.APITimeout)
		defer cancel()
		if err := a.h(w, r.WithContext(ctx), p); err != nil {
			writeError(w, log.With("subject", p.Subject), err)
		}
	})
}

func hasTenantWildcard(pattern string) bool { return strings.Contains(pattern, "{tenant}") }
