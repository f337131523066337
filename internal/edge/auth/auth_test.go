package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/twinit/byok-backup/internal/devstack/devauth"
	"github.com/twinit/byok-backup/internal/errcode"
)

func newVerifier(t *testing.T, iss *devauth.Issuer, mod func(*VerifierOptions)) *Verifier {
	t.Helper()
	o := VerifierOptions{JWKSURL: iss.JWKSURL(), Issuer: iss.IssuerURL(), Audience: iss.Audience()}
	if mod != nil {
		mod(&o)
	}
	v, err := NewVerifier(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func request(authz string) *http.Request {
	r := httptest.NewRequest("GET", "/api/tenants/acme/byok", nil)
	if authz != "" {
		r.Header.Set("Authorization", authz)
	}
	return r
}

func mustFn(t *testing.T) func(string, error) string {
	return func(s string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func TestAuthenticateRefusals(t *testing.T) {
	iss := devauth.TestStart(t)
	must := mustFn(t)
	v := newVerifier(t, iss, nil)
	now := time.Now()
	with := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := iss.Claims("acme", RoleRead)
		mod(c)
		return c
	}
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	valid := must(iss.Token("acme", RoleRead))
	tests := []struct {
		name  string
		authz string
	}{
		{"no header", ""},
		{"wrong scheme", "Basic " + valid},
		{"bearer without token", "Bearer "},
		{"malformed", "Bearer not.a.jwt"},
		{"two segments", "Bearer abc.def"},
		{"bad signature", "Bearer " + must(iss.Mint(iss.Claims("acme", RoleRead), devauth.WithMethod(jwt.SigningMethodRS256, otherKey)))},
		{"tampered payload", "Bearer " + tamper(t, valid)},
		{"unknown kid", "Bearer " + must(iss.Mint(iss.Claims("acme", RoleRead), devauth.WithKID("no-such-kid")))},
		{"alg none", "Bearer " + must(iss.Mint(iss.Claims("acme", RoleRead), devauth.WithMethod(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType)))},
		{"HS256 with public key as secret", "Bearer " + must(iss.Mint(iss.Claims("acme", RoleRead), devauth.WithMethod(jwt.SigningMethodHS256, iss.PublicKeyPEM())))},
		{"HS256 without kid", "Bearer " + must(iss.Mint(iss.Claims("acme", RoleRead), devauth.WithKID(""), devauth.WithMethod(jwt.SigningMethodHS256, iss.PublicKeyPEM())))},
		{"expired", "Bearer " + must(iss.Mint(with(func(c jwt.MapClaims) { c["exp"] = now.Add(-2 * time.Hour).Unix() })))},
		{"no exp", "Bearer " + must(iss.Mint(with(func(c jwt.MapClaims) { delete(c, "exp") })))},
		{"not yet valid", "Bearer " + must(iss.Mint(with(func(c jwt.MapClaims) { c["nbf"] = now.Add(2 * time.Hour).Unix() })))},
		{"wrong iss", "Bearer " + must(iss.Mint(with(func(c jwt.MapClaims) { c["iss"] = "https://evil.example/" })))},
		{"no iss", "Bearer " + must(iss.Mint(with(func(c jwt.MapClaims) { delete(c, "iss") })))},
		{"wrong aud", "Bearer " + must(iss.Mint(with(func(c jwt.MapClaims) { c["aud"] = "api://other" })))},
		{"no aud", "Bearer " + must(iss.Mint(with(func(c jwt.MapClaims) { delete(c, "aud") })))},
		{"missing tenant claim", "Bearer " + must(iss.Mint(with(func(c jwt.MapClaims) { delete(c, "tenant") })))},
		{"tenant claim not a string", "Bearer " + must(iss.Mint(with(func(c jwt.MapClaims) { c["tenant"] = 42 })))},
		{"roles claim not strings", "Bearer " + must(iss.Mint(with(func(c jwt.MapClaims) { c["roles"] = []any{1, 2} })))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Authenticate(request(tt.authz))
			if !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("Authenticate = %+v, %v; want ErrUnauthenticated", p, err)
			}
			if errcode.CodeOf(err) != errcode.Unauthorized {
				t.Errorf("code = %s, want Unauthorized", errcode.CodeOf(err))
			}
			if _, msg := errcode.Public(err); msg == "" || strings.Contains(msg, "crypto/rsa") || strings.Contains(msg, "keyfunc") ||
				strings.Contains(msg, "signature is invalid") || strings.Contains(msg, "malformed") {
				t.Errorf("public message %q", msg)
			}
		})
	}
	t.Run("valid", func(t *testing.T) {
		p, err := v.Authenticate(request("Bearer " + valid))
		if err != nil {
			t.Fatal(err)
		}
		if p.Tenant != "acme" || len(p.Roles) != 1 || p.Roles[0] != RoleRead || p.Subject != "dev-user@acme" {
			t.Fatalf("principal = %+v", p)
		}
	})
	t.Run("lower-case scheme", func(t *testing.T) {
		if _, err := v.Authenticate(request("bearer " + valid)); err != nil {
			t.Fatal(err)
		}
	})
}

// tamper changes the tenant in the payload but keeps the signature.
func tamper(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	p := jwt.NewParser()
	b, err := p.DecodeSegment(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte(`"acme"`), []byte(`"evil"`), 1)
	parts[1] = strings.TrimRight(jwtEncode(b), "=")
	return strings.Join(parts, ".")
}

func jwtEncode(b []byte) string {
	return strings.NewReplacer("+", "-", "/", "_").Replace(stdB64(b))
}

func TestRolesAndClaimNames(t *testing.T) {
	iss := devauth.TestStart(t)
	must := mustFn(t)
	v := newVerifier(t, iss, func(o *VerifierOptions) { o.TenantClaim, o.RolesClaim = "tid", "scp" })
	c := jwt.MapClaims{"iss": iss.IssuerURL(), "aud": []string{"other", iss.Audience()}, "exp": time.Now().Add(time.Hour).Unix(),
		"tid": "acme", "scp": "byok.read  byok.admin", "tenant": "evil", "roles": []string{RolePlatformOperator}}
	p, err := v.Authenticate(request("Bearer " + must(iss.Mint(c))))
	if err != nil {
		t.Fatal(err)
	}
	if p.Tenant != "acme" || len(p.Roles) != 2 || p.Roles[1] != RoleAdmin || p.IsPlatformOperator() {
		t.Fatalf("principal = %+v (claim names not honoured)", p)
	}
	// A platform operator may have no tenant claim at all.
	c = iss.Claims("", RolePlatformOperator)
	c["scp"] = []string{RolePlatformOperator}
	p, err = v.Authenticate(request("Bearer " + must(iss.Mint(c))))
	if err != nil {
		t.Fatal(err)
	}
	if !p.IsPlatformOperator() || p.Tenant != "" || !p.Can("anyone", PermAdmin) {
		t.Fatalf("principal = %+v", p)
	}
}

func TestKeyRotationPickedUp(t *testing.T) {
	iss := devauth.TestStart(t)
	must := mustFn(t)
	v := newVerifier(t, iss, nil)
	before := must(iss.Token("acme", RoleRead))
	if _, err := v.Authenticate(request("Bearer " + before)); err != nil {
		t.Fatal(err)
	}
	if err := iss.Rotate(); err != nil {
		t.Fatal(err)
	}
	after := must(iss.Token("acme", RoleRead))
	if _, err := v.Authenticate(request("Bearer " + after)); err != nil {
		t.Fatalf("token signed with the rotated key refused: %v", err)
	}
	// The old key is still published during rollover.
	if _, err := v.Authenticate(request("Bearer " + before)); err != nil {
		t.Fatalf("token signed with the previous key refused: %v", err)
	}
	// Two more rotations drop the first key: its tokens are refused.
	_ = iss.Rotate()
	_ = iss.Rotate()
	if _, err := v.Authenticate(request("Bearer " + must(iss.Token("acme", RoleRead)))); err == nil {
		// The unknown-kid limiter allows one refresh per minute: the newest key
		// can't be fetched again so soon, proving the limiter holds.
		t.Fatal("a second unknown-kid refresh within UnknownKIDInterval was allowed")
	}
}

func TestUnknownKIDIntervalTakesEffect(t *testing.T) {
	iss := devauth.TestStart(t)
	must := mustFn(t)
	v := newVerifier(t, iss, func(o *VerifierOptions) { o.UnknownKIDInterval = 10 * time.Millisecond })
	for i := range 3 {
		if err := iss.Rotate(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // let the limiter refill
		if _, err := v.Authenticate(request("Bearer " + must(iss.Token("acme", RoleRead)))); err != nil {
			t.Fatalf("rotation %d not picked up: %v", i, err)
		}
	}
}

func TestVerifierOptions(t *testing.T) {
	iss := devauth.TestStart(t)
	must := mustFn(t)
	c := iss.Claims("acme", RoleRead)
	c["exp"] = time.Now().Add(-30 * time.Second).Unix()
	recent := "Bearer " + must(iss.Mint(c))
	t.Run("default leeway accepts 30s skew", func(t *testing.T) {
		if _, err := newVerifier(t, iss, nil).Authenticate(request(recent)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Leeway", func(t *testing.T) {
		v := newVerifier(t, iss, func(o *VerifierOptions) { o.Leeway = time.Second })
		if _, err := v.Authenticate(request(recent)); !errors.Is(err, jwt.ErrTokenExpired) {
			t.Fatalf("err = %v, want expired", err)
		}
	})
	t.Run("Now", func(t *testing.T) {
		v := newVerifier(t, iss, func(o *VerifierOptions) { o.Now = func() time.Time { return time.Now().Add(3 * time.Hour) } })
		if _, err := v.Authenticate(request("Bearer " + must(iss.Token("acme")))); !errors.Is(err, jwt.ErrTokenExpired) {
			t.Fatalf("err = %v, want expired under the injected clock", err)
		}
	})
	t.Run("HTTPClient", func(t *testing.T) {
		var n atomic.Int32
		client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			n.Add(1)
			return http.DefaultTransport.RoundTrip(r)
		})}
		v := newVerifier(t, iss, func(o *VerifierOptions) { o.HTTPClient = client })
		if _, err := v.Authenticate(request("Bearer " + must(iss.Token("acme")))); err != nil {
			t.Fatal(err)
		}
		if n.Load() == 0 {
			t.Fatal("the injected HTTP client was not used")
		}
	})
	t.Run("Logger and unreachable JWKS", func(t *testing.T) {
		var buf bytes.Buffer
		dead := httptest.NewServer(http.NotFoundHandler())
		dead.Close()
		v, err := NewVerifier(t.Context(), VerifierOptions{JWKSURL: dead.URL + "/jwks", Issuer: iss.IssuerURL(), Audience: iss.Audience(),
			Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
		if err != nil {
			t.Fatalf("an unreachable key set must not stop startup: %v", err)
		}
		if !strings.Contains(buf.String(), "failed to refresh the token signing keys") {
			t.Errorf("no warning logged: %q", buf.String())
		}
		if _, err := v.Authenticate(request("Bearer " + must(iss.Token("acme")))); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("err = %v, want 401 while keys are unavailable", err)
		}
	})
	t.Run("required", func(t *testing.T) {
		if _, err := NewVerifier(context.Background(), VerifierOptions{JWKSURL: iss.JWKSURL()}); err == nil {
			t.Fatal("missing Issuer and Audience accepted")
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestCanMatrix(t *testing.T) {
	perms := []Permission{PermRead, PermAdmin, PermOperate}
	allowed := map[string][]bool{ // read, admin, operate on own tenant
		RoleRead:             {true, false, false},
		RoleAdmin:            {true, true, false},
		RoleBackupOperator:   {true, false, true},
		RolePlatformOperator: {true, true, true},
		"unknown.role":       {false, false, false},
	}
	for role, want := range allowed {
		for i, perm := range perms {
			p := Principal{Tenant: "acme", Roles: []string{role}}
			t.Run(fmt.Sprintf("role=%s,perm=%s", role, perm), func(t *testing.T) {
				if got := p.Can("acme", perm); got != want[i] {
					t.Errorf("own tenant: Can = %v, want %v", got, want[i])
				}
				wantOther := role == RolePlatformOperator
				if got := p.Can("other", perm); got != wantOther {
					t.Errorf("other tenant: Can = %v, want %v", got, wantOther)
				}
			})
		}
	}
	if (Principal{Tenant: "acme"}).Can("acme", PermRead) {
		t.Error("no roles may read")
	}
	if (Principal{Tenant: "", Roles: []string{RoleAdmin}}).Can("", PermRead) {
		t.Error("empty tenant matched empty claim")
	}
	if !(Principal{Tenant: "acme", Roles: []string{RoleRead, RoleBackupOperator}}).Can("acme", PermOperate) {
		t.Error("roles do not combine")
	}
	err := Forbidden("acme", PermAdmin)
	if !errors.Is(err, ErrForbidden) || errcode.CodeOf(err) != errcode.Forbidden {
		t.Fatalf("Forbidden = %v", err)
	}
}
