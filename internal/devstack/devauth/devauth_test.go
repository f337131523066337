package devauth

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

func fetchKIDs(t *testing.T, url string) []string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var set struct {
		Keys []struct{ Kid, Kty, Alg, N, E string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		if k.Kty != "RSA" || k.Alg != "RS256" || k.N == "" || k.E != "AQAB" {
			t.Errorf("bad key %+v", k)
		}
		kids = append(kids, k.Kid)
	}
	return kids
}

func verify(t *testing.T, iss *Issuer, token string) jwt.MapClaims {
	t.Helper()
	kf, err := keyfunc.NewDefaultCtx(t.Context(), []string{iss.JWKSURL()})
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(token, claims, kf.Keyfunc, jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithIssuer(iss.IssuerURL()), jwt.WithAudience(iss.Audience()), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("token does not verify against the served JWKS: %v", err)
	}
	return claims
}

func TestIssuer(t *testing.T) {
	iss := TestStart(t)
	if !strings.HasPrefix(iss.JWKSURL(), "http://127.0.0.1:") || iss.IssuerURL() == "" || iss.Audience() != "api://byok-backup" {
		t.Fatalf("urls: %s %s %s", iss.JWKSURL(), iss.IssuerURL(), iss.Audience())
	}
	if kids := fetchKIDs(t, iss.JWKSURL()); len(kids) != 1 || kids[0] != iss.KID() {
		t.Fatalf("kids = %v, want [%s]", kids, iss.KID())
	}
	tok, err := iss.Token("acme", "byok.read", "backup.operator")
	if err != nil {
		t.Fatal(err)
	}
	c := verify(t, iss, tok)
	if c["tenant"] != "acme" {
		t.Errorf("tenant = %v", c["tenant"])
	}
	if roles, _ := c["roles"].([]any); len(roles) != 2 || roles[0] != "byok.read" {
		t.Errorf("roles = %v", c["roles"])
	}
	exp, _ := c.GetExpirationTime()
	nbf, _ := c.GetNotBefore()
	if exp == nil || nbf == nil || exp.Sub(nbf.Time).Minutes() != 60 {
		t.Errorf("lifetime: nbf %v exp %v", nbf, exp)
	}
}

func TestRotate(t *testing.T) {
	iss := TestStart(t)
	old := iss.KID()
	if err := iss.Rotate(); err != nil {
		t.Fatal(err)
	}
	if iss.KID() == old {
		t.Fatal("Rotate kept the kid")
	}
	kids := fetchKIDs(t, iss.JWKSURL())
	if len(kids) != 2 || kids[0] != iss.KID() || kids[1] != old {
		t.Fatalf("kids after rotation = %v, want [%s %s]", kids, iss.KID(), old)
	}
	tok, err := iss.Token("acme")
	if err != nil {
		t.Fatal(err)
	}
	h, _, _ := strings.Cut(tok, ".")
	var hdr map[string]any
	b, _ := jwt.NewParser().DecodeSegment(h)
	_ = json.Unmarshal(b, &hdr)
	if hdr["kid"] != iss.KID() {
		t.Errorf("token kid = %v, want %s", hdr["kid"], iss.KID())
	}
	verify(t, iss, tok)
	_ = iss.Rotate()
	if kids := fetchKIDs(t, iss.JWKSURL()); len(kids) != 2 || kids[1] == old {
		t.Fatalf("second rotation kept the oldest key: %v", kids)
	}
}

func TestMintOptions(t *testing.T) {
	iss := TestStart(t)
	claims := iss.Claims("acme", "byok.read")
	hs, err := iss.Mint(claims, WithMethod(jwt.SigningMethodHS256, iss.PublicKeyPEM()), WithKID(""), WithHeader("typ", "at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := jwt.NewParser().ParseUnverified(hs, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Method.Alg() != "HS256" || tok.Header["kid"] != nil || tok.Header["typ"] != "at+jwt" {
		t.Errorf("header = %v", tok.Header)
	}
	none, err := iss.Mint(claims, WithMethod(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(none, ".") {
		t.Errorf("alg none token has a signature: %s", none)
	}
}
