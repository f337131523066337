// Package devauth is a local token issuer for tests and the local stack: it
// serves a JSON Web Key Set over HTTP on 127.0.0.1 and mints RS256 tokens
// the service's verifier accepts, plus deliberately bad ones for refusal
// tests. It is never used in production.
package devauth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Options configure an [Issuer]. Zero values pick the defaults.
type Options struct {
	// Addr is the listen address; default "127.0.0.1:0" (a free port).
	Addr string
	// Issuer is the iss claim; default the issuer's own base URL.
	Issuer string
	// Audience is the aud claim; default "api://byok-backup".
	Audience string
	// TenantClaim and RolesClaim name the claims Token sets; defaults
	// "tenant" and "roles" (API.md §4 AUTH_TENANT_CLAIM, AUTH_ROLES_CLAIM).
	TenantClaim, RolesClaim string
	// Lifetime of tokens from Token; default 1 h.
	Lifetime time.Duration
}

// JWKSPath is where the key set is served.
const JWKSPath = "/.well-known/jwks.json"

// Issuer is a running local issuer.
type Issuer struct {
	opts    Options
	baseURL string
	srv     *http.Server
	ln      net.Listener

	mu   sync.Mutex
	keys []signingKey // keys[0] signs; the rest stay published (rotation overlap)
}

type signingKey struct {
	kid string
	key *rsa.PrivateKey
}

// Start generates a signing key and serves its JWKS.
func Start(opts Options) (*Issuer, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Audience == "" {
		opts.Audience = "api://byok-backup"
	}
	if opts.TenantClaim == "" {
		opts.TenantClaim = "tenant"
	}
	if opts.RolesClaim == "" {
		opts.RolesClaim = "roles"
	}
	if opts.Lifetime <= 0 {
		opts.Lifetime = time.Hour
	}
	k, err := newKey()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("devauth: listen on %s: %w", opts.Addr, err)
	}
	iss := &Issuer{opts: opts, ln: ln, keys: []signingKey{k}, baseURL: "http://" + ln.Addr().String()}
	if iss.opts.Issuer == "" {
		iss.opts.Issuer = iss.baseURL + "/"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+JWKSPath, iss.serveJWKS)
	iss.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = iss.srv.Serve(ln) }()
	return iss, nil
}

func newKey() (signingKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return signingKey{}, fmt.Errorf("devauth: generate key: %w", err)
	}
	kid := make([]byte, 9)
	if _, err := rand.Read(kid); err != nil {
		return signingKey{}, err
	}
	return signingKey{kid: base64.RawURLEncoding.EncodeToString(kid), key: key}, nil
}

// JWKSURL is the URL of the key set (AUTH_JWKS_URL).
func (i *Issuer) JWKSURL() string { return i.baseURL + JWKSPath }

// IssuerURL is the iss claim (AUTH_ISSUER).
func (i *Issuer) IssuerURL() string { return i.opts.Issuer }

// Audience is the aud claim (AUTH_AUDIENCE).
func (i *Issuer) Audience() string { return i.opts.Audience }

// KID is the current signing key's id.
func (i *Issuer) KID() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.keys[0].kid
}

// PublicKeyPEM is the current public key in PKIX PEM, the bytes an
// algorithm-confusion attacker would use as an HMAC secret.
func (i *Issuer) PublicKeyPEM() []byte {
	i.mu.Lock()
	defer i.mu.Unlock()
	der, err := x509.MarshalPKIXPublicKey(&i.keys[0].key.PublicKey)
	if err != nil {
		panic("devauth: internal error: " + err.Error())
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// Rotate makes a new key (new kid) the signing key. The previous key stays
// published, as identity providers do during rollover; older ones are dropped.
func (i *Issuer) Rotate() error {
	k, err := newKey()
	if err != nil {
		return err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys = []signingKey{k, i.keys[0]}
	return nil
}

// Close stops serving.
func (i *Issuer) Close() error {
	err := i.srv.Close()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func (i *Issuer) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	type jwk struct {
		Kty string `json:"kty"`
		Kid string `json:"kid"`
		Use string `json:"use"`
		Alg string `json:"alg"`
		N   string `json:"n"`
		E   string `json:"e"`
	}
	i.mu.Lock()
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: []jwk{}}
	for _, k := range i.keys {
		pub := k.key.PublicKey
		set.Keys = append(set.Keys, jwk{Kty: "RSA", Kid: k.kid, Use: "sig", Alg: "RS256",
			N: base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			E: base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes())})
	}
	i.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(set)
}

// Claims returns the claims of a valid token for tenant with roles: iss,
// aud, sub, iat, nbf, exp (Lifetime from now) and the tenant and roles claims.
func (i *Issuer) Claims(tenant string, roles ...string) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{
		"iss": i.opts.Issuer,
		"aud": i.opts.Audience,
		"sub": "dev-user@" + tenant,
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(i.opts.Lifetime).Unix(),
	}
	if tenant != "" {
		c[i.opts.TenantClaim] = tenant
	}
	if roles == nil {
		roles = []string{}
	}
	c[i.opts.RolesClaim] = roles
	return c
}

// Token mints a valid RS256 token for tenant with roles, for Lifetime.
func (i *Issuer) Token(tenant string, roles ...string) (string, error) {
	return i.Mint(i.Claims(tenant, roles...))
}

// MintOption changes how [Issuer.Mint] signs.
type MintOption func(*mintConfig)

type mintConfig struct {
	method jwt.SigningMethod
	key    any
	kid    *string
	header map[string]any
}

// WithMethod signs with method and key instead of RS256 and the current key
// (e.g. jwt.SigningMethodHS256 with PublicKeyPEM() for the confusion attack,
// or jwt.SigningMethodNone with jwt.UnsafeAllowNoneSignatureType).
func WithMethod(method jwt.SigningMethod, key any) MintOption {
	return func(m *mintConfig) { m.method, m.key = method, key }
}

// WithKID sets the kid header; "" leaves it out.
func WithKID(kid string) MintOption { return func(m *mintConfig) { m.kid = &kid } }

// WithHeader sets an extra header field.
func WithHeader(name string, v any) MintOption {
	return func(m *mintConfig) { m.header[name] = v }
}

// Mint signs claims as given, for refusal tests.
func (i *Issuer) Mint(claims jwt.MapClaims, opts ...MintOption) (string, error) {
	i.mu.Lock()
	cur := i.keys[0]
	i.mu.Unlock()
	m := mintConfig{method: jwt.SigningMethodRS256, key: cur.key, header: map[string]any{}}
	for _, o := range opts {
		o(&m)
	}
	tok := jwt.NewWithClaims(m.method, claims)
	kid := cur.kid
	if m.kid != nil {
		kid = *m.kid
	}
	if kid != "" {
		tok.Header["kid"] = kid
	}
	for k, v := range m.header {
		tok.Header[k] = v
	}
	return tok.SignedString(m.key)
}
