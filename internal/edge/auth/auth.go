// Package auth verifies callers' bearer tokens (JWT, keys from a JWKS URL)
// and decides what a caller may do (API.md §2 "Identity").
//
// Tokens are parsed and verified by golang-jwt/jwt/v5 with keys from
// MicahParks/keyfunc/v3: the key set is fetched at start, refreshed hourly,
// and a token with an unknown kid triggers a rate-limited refresh so a
// rotated signing key is picked up at once. Only asymmetric algorithms are
// accepted: alg "none" and HMAC (the public-key-as-secret confusion) are
// refused before any key is looked up.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/twinit/byok-backup/internal/errcode"
)

// ErrUnauthenticated is the cause of every 401: no token, or a token that
// is not valid. Errors are *errcode.Error with code Unauthorized.
var ErrUnauthenticated = errors.New("auth: unauthenticated")

// ErrForbidden is the cause of every 403: a valid token without the right.
var ErrForbidden = errors.New("auth: forbidden")

// validMethods are the only algorithms accepted.
var validMethods = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}

// VerifierOptions configure [NewVerifier].
type VerifierOptions struct {
	JWKSURL     string // required
	Issuer      string // required: iss must equal it
	Audience    string // required: aud must contain it
	TenantClaim string // default "tenant"
	RolesClaim  string // default "roles"
	// HTTPClient fetches the key set; default http.DefaultClient.
	HTTPClient *http.Client
	Logger     *slog.Logger // default slog.Default()
	// Leeway tolerated on exp and nbf for clock skew; default 1 minute.
	Leeway time.Duration
	// RefreshInterval is how often the key set is re-read; default 1 hour.
	RefreshInterval time.Duration
	// UnknownKIDInterval is the least time between refreshes triggered by
	// an unknown kid (so junk kids can't hammer the issuer); default 1 minute.
	UnknownKIDInterval time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Verifier checks bearer tokens. It is safe for concurrent use.
type Verifier struct {
	opts   VerifierOptions
	kf     keyfunc.Keyfunc
	parser *jwt.Parser
}

// NewVerifier fetches the key set and returns a verifier whose background
// refresh stops when ctx ends. A key set that can't be fetched at start is
// logged, not fatal: it is fetched again on the first token.
func NewVerifier(ctx context.Context, o VerifierOptions) (*Verifier, error) {
	if o.JWKSURL == "" || o.Issuer == "" || o.Audience == "" {
		return nil, errors.New("auth: JWKSURL, Issuer and Audience are required")
	}
	if o.TenantClaim == "" {
		o.TenantClaim = "tenant"
	}
	if o.RolesClaim == "" {
		o.RolesClaim = "roles"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.HTTPClient == nil {
		o.HTTPClient = http.DefaultClient
	}
	if o.Leeway == 0 {
		o.Leeway = time.Minute
	}
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = time.Hour
	}
	if o.UnknownKIDInterval <= 0 {
		o.UnknownKIDInterval = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	logger := o.Logger
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{o.JWKSURL}, keyfunc.Override{
		Client:          o.HTTPClient,
		HTTPTimeout:     10 * time.Second,
		RefreshInterval: o.RefreshInterval,
		// Also bounds the refresh request itself, so keep it above HTTPTimeout-ish
		// latency but short enough that a request with an unknown kid fails fast.
		RateLimitWaitMax:  5 * time.Second,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(o.UnknownKIDInterval), 1),
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(ctx context.Context, err error) {
				logger.WarnContext(ctx, "failed to refresh the token signing keys", "jwksUrl", u, "err", err)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("auth: set up key set from %s: %w", o.JWKSURL, err)
	}
	return &Verifier{
		opts: o,
		kf:   kf,
		parser: jwt.NewParser(
			jwt.WithValidMethods(validMethods),
			jwt.WithIssuer(o.Issuer),
			jwt.WithAudience(o.Audience),
			jwt.WithExpirationRequired(),
			jwt.WithLeeway(o.Leeway),
			jwt.WithTimeFunc(o.Now),
		),
	}, nil
}

func unauthenticated(cause error, format string, args ...any) error {
	return errcode.Wrap(fmt.Errorf("%w: %w", ErrUnauthenticated, cause), errcode.Unauthorized, format, args...)
}

// Authenticate verifies the request's "Authorization: Bearer <JWT>".
func (v *Verifier) Authenticate(r *http.Request) (Principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return Principal{}, unauthenticated(errors.New("no Authorization header"),
			"The request has no bearer token: send Authorization: Bearer <token>.")
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return Principal{}, unauthenticated(errors.New("not a Bearer authorization"),
			"The Authorization header is not a bearer token: send Authorization: Bearer <token>.")
	}
	return v.Verify(r.Context(), strings.TrimSpace(token))
}

// Verify checks a raw token and returns its principal.
func (v *Verifier) Verify(ctx context.Context, token string) (Principal, error) {
	claims := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(token, claims, v.kf.KeyfuncCtx(ctx))
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired):
		return Principal{}, unauthenticated(err, "The bearer token has expired: get a new token.")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return Principal{}, unauthenticated(err, "The bearer token is not valid yet: check the issuer's clock or get a new token.")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return Principal{}, unauthenticated(err, "The bearer token was issued by another issuer: get a token from the service's identity provider.")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return Principal{}, unauthenticated(err, "The bearer token was issued for another audience: request a token for this API.")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return Principal{}, unauthenticated(err, "The bearer token lacks a required claim (exp): get a new token.")
	default:
		// Malformed, bad signature, refused algorithm, unknown key: one
		// message, so a prober learns nothing about which check failed.
		return Principal{}, unauthenticated(err, "The bearer token is not valid: get a new token from the service's identity provider.")
	}

	p := Principal{}
	p.Subject, _ = claims["sub"].(string)
	roles, err := stringList(claims[v.opts.RolesClaim])
	if err != nil {
		return Principal{}, unauthenticated(err, "The bearer token's %s claim is not a list of roles: get a new token.", v.opts.RolesClaim)
	}
	p.Roles = roles
	switch t := claims[v.opts.TenantClaim].(type) {
	case string:
		p.Tenant = t
	case nil:
	default:
		return Principal{}, unauthenticated(errors.New("tenant claim is not a string"),
			"The bearer token's %s claim is not a tenant id: get a new token.", v.opts.TenantClaim)
	}
	if p.Tenant == "" && !p.IsPlatformOperator() {
		return Principal{}, unauthenticated(errors.New("no tenant claim"),
			"The bearer token has no %s claim: get a token issued for your tenant.", v.opts.TenantClaim)
	}
	return p, nil
}

// stringList reads a roles claim given as a JSON array of strings or as a
// space-separated string (the OAuth "scope" style).
func stringList(v any) ([]string, error) {
	switch t := v.(type) {
	case nil:
		return nil, nil
	case string:
		return strings.Fields(t), nil
	case []any:
		out := make([]string, 0, len(t))
		for _, e := range t {
			s, ok := e.(string)
			if !ok {
				return nil, errors.New("roles claim holds a non-string")
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("roles claim is a %T", v)
}

// Forbidden is the 403 error for a principal lacking perm on tenant.
func Forbidden(tenant string, perm Permission) error {
	return errcode.Wrap(fmt.Errorf("%w: %s on %s", ErrForbidden, perm, tenant), errcode.Forbidden,
		"The caller may not do this on tenant %s: it needs a token for that tenant with a role granting %s access.", tenant, perm)
}
