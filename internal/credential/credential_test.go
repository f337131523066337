package credential

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keywrap"
)

const (
	appID   = "4ab9f542-0305-4d62-94c9-69786fb5d1ec"
	tenantA = "11111111-1111-4111-8111-111111111111"
	tenantB = "22222222-2222-4222-8222-222222222222"
	uamiID  = "33333333-3333-4333-8333-333333333333"
)

// entra is a fake Entra ID + IMDS at the transport seam: it answers the
// requests azidentity/MSAL send and records token requests, so tests prove
// which tenant, client and assertion a credential used without any network.
type entra struct {
	mu       sync.Mutex
	requests []tokenRequest
	fail     bool
}

type tokenRequest struct {
	Kind     string // "imds" or "entra"
	Tenant   string
	Form     url.Values
	Resource string
	ClientID string // IMDS client_id query
}

func (e *entra) Do(req *http.Request) (*http.Response, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	q := req.URL.Query()
	switch {
	case req.URL.Host == "169.254.169.254":
		e.requests = append(e.requests, tokenRequest{Kind: "imds", Resource: q.Get("resource"), ClientID: q.Get("client_id")})
		if e.fail {
			return reply(req, 400, `{"error":"invalid_request","error_description":"Identity not found"}`), nil
		}
		exp := time.Now().Add(time.Hour).Unix()
		return reply(req, 200, fmt.Sprintf(`{"access_token":"mi-assertion","expires_in":"3600","expires_on":"%d","resource":%q,"token_type":"Bearer"}`, exp, q.Get("resource"))), nil
	case strings.HasSuffix(req.URL.Path, "/discovery/instance"):
		return reply(req, 200, `{"tenant_discovery_endpoint":"https://login.microsoftonline.com/x/v2.0/.well-known/openid-configuration","api-version":"1.1","metadata":[{"preferred_network":"login.microsoftonline.com","preferred_cache":"login.windows.net","aliases":["login.microsoftonline.com","login.windows.net"]}]}`), nil
	case strings.HasSuffix(req.URL.Path, "/.well-known/openid-configuration"):
		t := strings.Split(req.URL.Path, "/")[1]
		base := "https://login.microsoftonline.com/" + t
		return reply(req, 200, fmt.Sprintf(`{"authorization_endpoint":"%s/oauth2/v2.0/authorize","token_endpoint":"%s/oauth2/v2.0/token","issuer":"%s/v2.0"}`, base, base, base)), nil
	case strings.HasSuffix(req.URL.Path, "/oauth2/v2.0/token"):
		body, _ := io.ReadAll(req.Body)
		form, _ := url.ParseQuery(string(body))
		e.requests = append(e.requests, tokenRequest{Kind: "entra", Tenant: strings.Split(req.URL.Path, "/")[1], Form: form})
		if e.fail {
			return reply(req, 400, `{"error":"invalid_client","error_description":"AADSTS700016: Application not found in the directory"}`), nil
		}
		return reply(req, 200, `{"access_token":"vault-token","expires_in":3600,"ext_expires_in":3600,"token_type":"Bearer"}`), nil
	}
	return reply(req, 404, `{}`), nil
}

func (e *entra) tokenRequests() []tokenRequest {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]tokenRequest(nil), e.requests...)
}

func reply(req *http.Request, status int, body string) *http.Response {
	return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(body)), Request: req}
}

func vaultToken(t *testing.T, c azcore.TokenCredential, tenant string) azcore.AccessToken {
	t.Helper()
	tk, err := c.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}, TenantID: tenant})
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	return tk
}

func newSource(t *testing.T, o Options, fake *entra) *Source {
	t.Helper()
	o.AppClientID = appID
	o.ClientOptions = azcore.ClientOptions{Transport: fake, Retry: policy.RetryOptions{MaxRetries: -1}}
	s, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func TestFederatedUsesManagedIdentityAssertionInCustomerTenant(t *testing.T) {
	fake := &entra{}
	s := newSource(t, Options{Mode: Federated, FederatedIdentityClientID: uamiID}, fake)
	for _, tenant := range []string{tenantA, tenantB} {
		c, err := s.For(keywrap.Ref{Source: keywrap.Customer, TenantID: tenant})
		if err != nil {
			t.Fatal(err)
		}
		if tk := vaultToken(t, c, tenant); tk.Token != "vault-token" {
			t.Fatalf("token = %q", tk.Token)
		}
	}
	var imds, tokens []tokenRequest
	for _, r := range fake.tokenRequests() {
		if r.Kind == "imds" {
			imds = append(imds, r)
		} else {
			tokens = append(tokens, r)
		}
	}
	if len(imds) == 0 || imds[0].Resource != "api://AzureADTokenExchange" || imds[0].ClientID != uamiID {
		t.Fatalf("managed identity requests = %+v, want resource api://AzureADTokenExchange for client %s", imds, uamiID)
	}
	if len(tokens) != 2 {
		t.Fatalf("token requests = %+v, want one per tenant", tokens)
	}
	for i, tenant := range []string{tenantA, tenantB} {
		r := tokens[i]
		if r.Tenant != tenant || r.Form.Get("client_id") != appID || r.Form.Get("client_assertion") != "mi-assertion" ||
			r.Form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" ||
			!strings.Contains(r.Form.Get("scope"), "https://vault.azure.net/.default") {
			t.Errorf("token request %d = tenant %s form %v", i, r.Tenant, r.Form)
		}
	}
}

func TestSecretSignsInToCustomerTenant(t *testing.T) {
	fake := &entra{}
	s := newSource(t, Options{Mode: Secret, ClientSecret: "s3cret"}, fake)
	c, err := s.Customer(tenantB)
	if err != nil {
		t.Fatal(err)
	}
	vaultToken(t, c, tenantB)
	rs := fake.tokenRequests()
	if len(rs) != 1 || rs[0].Tenant != tenantB || rs[0].Form.Get("client_id") != appID || rs[0].Form.Get("client_secret") != "s3cret" {
		t.Fatalf("token requests = %+v", rs)
	}
	if c.Mode != Secret || c.TenantID != tenantB || c.ClientID != appID {
		t.Fatalf("credential = %+v", c)
	}
}

func TestCertificateSignsInWithSignedAssertion(t *testing.T) {
	fake := &entra{}
	path := writeCert(t)
	s := newSource(t, Options{Mode: Certificate, CertificatePath: path}, fake)
	c, err := s.Customer(tenantA)
	if err != nil {
		t.Fatal(err)
	}
	vaultToken(t, c, tenantA)
	rs := fake.tokenRequests()
	if len(rs) != 1 || rs[0].Tenant != tenantA || rs[0].Form.Get("client_id") != appID ||
		strings.Count(rs[0].Form.Get("client_assertion"), ".") != 2 || rs[0].Form.Get("client_secret") != "" {
		t.Fatalf("token requests = %+v, want a JWT client assertion for %s in %s", rs, appID, tenantA)
	}
}

func TestEmulatorTokens(t *testing.T) {
	s := newSource(t, Options{Mode: Emulator, PlatformMode: Emulator}, &entra{})
	c, err := s.Customer("AAAAAAAA-1111-4111-8111-111111111111")
	if err != nil {
		t.Fatal(err)
	}
	if tk := vaultToken(t, c, ""); tk.Token != "emulator."+appID+".aaaaaaaa-1111-4111-8111-111111111111" {
		t.Fatalf("customer token = %q", tk.Token)
	}
	p, err := s.For(keywrap.Ref{Source: keywrap.Platform})
	if err != nil {
		t.Fatal(err)
	}
	if tk := vaultToken(t, p, ""); tk.Token != "emulator.platform" {
		t.Fatalf("platform token = %q", tk.Token)
	}
}

func TestPlatformManagedIdentity(t *testing.T) {
	for _, id := range []string{"", uamiID} {
		t.Run("client="+id, func(t *testing.T) {
			fake := &entra{}
			s := newSource(t, Options{Mode: Emulator, PlatformIdentityClientID: id}, fake)
			p, err := s.Platform()
			if err != nil {
				t.Fatal(err)
			}
			vaultToken(t, p, "")
			rs := fake.tokenRequests()
			if len(rs) != 1 || rs[0].Kind != "imds" || rs[0].Resource != "https://vault.azure.net" || rs[0].ClientID != id {
				t.Fatalf("requests = %+v", rs)
			}
		})
	}
}

func TestCachedPerTenant(t *testing.T) {
	s := newSource(t, Options{Mode: Secret, ClientSecret: "x"}, &entra{})
	a1, _ := s.Customer(tenantA)
	a2, _ := s.Customer(strings.ToUpper(tenantA))
	b, _ := s.Customer(tenantB)
	if a1 != a2 || a1 == b || a1.TenantID != tenantA || b.TenantID != tenantB {
		t.Fatalf("cache: a1=%p a2=%p b=%p", a1, a2, b)
	}
	p1, _ := s.Platform()
	p2, _ := s.Platform()
	if p1 != p2 {
		t.Fatal("platform credential not cached")
	}
}

func TestSignInFailureIsKeyVaultAuthFailed(t *testing.T) {
	fake := &entra{fail: true}
	s := newSource(t, Options{Mode: Secret, ClientSecret: "s3cret"}, fake)
	c, _ := s.Customer(tenantA)
	_, err := c.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
	e, ok := errcode.As(err)
	if !ok || e.Code != errcode.KeyVaultAuthFailed || !strings.Contains(e.Message, tenantA) || !strings.Contains(e.Message, appID) {
		t.Fatalf("error = %v", err)
	}
	if strings.Contains(e.Message, "AADSTS") || strings.Contains(e.Message, "s3cret") {
		t.Fatalf("message leaks response text: %q", e.Message)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for name, o := range map[string]Options{
		"unknown mode":          {Mode: "password", AppClientID: appID},
		"bad app id":            {Mode: Emulator, AppClientID: "app"},
		"secret without secret": {Mode: Secret, AppClientID: appID},
		"cert without path":     {Mode: Certificate, AppClientID: appID},
		"cert missing file":     {Mode: Certificate, AppClientID: appID, CertificatePath: "/nonexistent.pem"},
		"unknown platform":      {Mode: Emulator, AppClientID: appID, PlatformMode: "secret"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: New accepted %+v", name, o)
		}
	}
	s := newSource(t, Options{Mode: Emulator}, &entra{})
	if _, err := s.Customer("contoso.onmicrosoft.com"); errcode.CodeOf(err) != errcode.InvalidRequest {
		t.Errorf("Customer(non-GUID) = %v, want InvalidRequest", err)
	}
}

func writeCert(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "byok-app"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "app.pem")
	data := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})...)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The customer credential cache is bounded: 10,000 distinct Entra tenants
// leave the heap (after GC) where the first MaxCustomers left it, and an
// evicted tenant gets a working credential again.
func TestCustomerCacheMemoryIsFlat(t *testing.T) {
	const maxCustomers = 64
	s, err := New(Options{Mode: Secret, AppClientID: appID, ClientSecret: "s", PlatformMode: Emulator,
		MaxCustomers: maxCustomers, ClientOptions: azcore.ClientOptions{Transport: &entra{}}})
	if err != nil {
		t.Fatal(err)
	}
	use := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := s.Customer(fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	use(0, 2*maxCustomers)
	before := heapAfterGC()
	use(2*maxCustomers, 2*maxCustomers+10_000)
	after := heapAfterGC()
	growth := int64(after) - int64(before)
	t.Logf("heap before %d B, after 10,000 more tenants %d B (growth %d B)", before, after, growth)
	if growth > 1<<20 {
		t.Fatalf("heap grew by %d B over 10,000 tenants", growth)
	}
	if n := s.customers.Len(); n != maxCustomers {
		t.Fatalf("cached credentials = %d, want %d", n, maxCustomers)
	}
	first, err := s.Customer(fmt.Sprintf("%08x-0000-4000-8000-%012x", 0, 0))
	if err != nil || first == nil {
		t.Fatalf("evicted tenant: %v", err)
	}
}

func heapAfterGC() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
