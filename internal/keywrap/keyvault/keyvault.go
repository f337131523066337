// Package keyvault implements keywrap.Wrapper with Azure Key Vault through
// azkeys; it is the only importer of azkeys. It serves customer keys (BYOK)
// and the platform key alike: the credential comes from a [Credentials]
// source by key reference.
//
// # Transport
//
// Vault hosts ending in ".localhost" are dialled on 127.0.0.1 (RFC 6761; the
// emulator serves many vaults by host name). An extra CA (KEYVAULT_CA_FILE)
// is trusted in addition to the system roots. Challenge resource
// verification stays on for real Key Vault hosts and is turned off only for
// other hosts (emulators), as API.md §4 says.
//
// # Retries and time bounds
//
// azcore's retry policy retries 408, 429 and 5xx and transport errors with
// exponential backoff, honouring Retry-After up to MaxRetryDelay. Each try is
// bounded by TryTimeout and each dial by DialTimeout, so an unreachable vault
// is reported (KeyVaultUnreachable) after MaxRetries+1 short tries, in
// seconds rather than minutes.
//
// # Errors
//
// Every error is classified once, in classify.go, into API.md's key
// codes from status, error code and innererror code; messages never contain
// Azure response text.
package keyvault

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/twinit/byok-backup/internal/keywrap"
)

// Credentials gives the credential for a key reference: customer refs by
// ref.TenantID, platform refs by ref.Source. *credential.Source implements it.
type Credentials interface {
	For(ref keywrap.Ref) (azcore.TokenCredential, error)
}

// Options configures a [Wrapper]. Zero durations mean the defaults below.
type Options struct {
	Credentials Credentials // required

	// ApplicationID is BYOK_APP_CLIENT_ID, named in messages that tell a
	// customer whom to grant access to.
	ApplicationID string

	// CAPEM is an extra CA (PEM, from KEYVAULT_CA_FILE) trusted in addition
	// to the system roots.
	CAPEM []byte

	MaxRetries    int           // retries after the first try; default 3, negative = none
	RetryDelay    time.Duration // base backoff; default 300ms
	MaxRetryDelay time.Duration // backoff cap; a longer Retry-After is not waited for; default 4s
	TryTimeout    time.Duration // one HTTP try; default 10s
	DialTimeout   time.Duration // TCP connect; default 3s

	// OwnershipTag is BYOK_OWNERSHIP_TAG: when set, every read of a
	// customer key (Inspect, and the GET before each wrap and unwrap)
	// refuses a version whose tag of that name does not list ref.Owner
	// (API.md §5). Empty turns the check off.
	OwnershipTag string

	// MaxClients bounds the cached Key Vault clients (one per vault and
	// credential); the least recently used is dropped. 0 = DefaultMaxClients.
	MaxClients int

	Logger *slog.Logger     // nil = discard
	Now    func() time.Time // nil = time.Now; used for nbf/exp checks before wrapping
}

// Defaults for [Options].
const (
	DefaultMaxRetries    = 3
	DefaultRetryDelay    = 300 * time.Millisecond
	DefaultMaxRetryDelay = 4 * time.Second
	DefaultTryTimeout    = 10 * time.Second
	DefaultDialTimeout   = 3 * time.Second
	DefaultMaxClients    = 1024
)

// Wrapper wraps and unwraps data keys with Key Vault keys.
type Wrapper struct {
	creds Credentials
	appID string
	http  *http.Client
	retry policy.RetryOptions
	log   *slog.Logger
	now   func() time.Time
	tag   string

	// mu serialises client creation so one vault gets one client; the
	// cache is bounded so distinct vault/tenant pairs can't grow memory.
	mu      sync.Mutex
	clients *lru.Cache[clientKey, *azkeys.Client]
}

var _ keywrap.Wrapper = (*Wrapper)(nil)

// clientKey identifies one azkeys client: a vault and whose credential.
type clientKey struct {
	vaultURL string
	source   keywrap.Source
	tenant   string
}

// New returns a Wrapper. It sends nothing over the network.
func New(opts Options) (*Wrapper, error) {
	if opts.Credentials == nil {
		return nil, errors.New("keyvault: Options.Credentials is required")
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = DefaultMaxRetries
	}
	if opts.RetryDelay == 0 {
		opts.RetryDelay = DefaultRetryDelay
	}
	if opts.MaxRetryDelay == 0 {
		opts.MaxRetryDelay = DefaultMaxRetryDelay
	}
	if opts.TryTimeout == 0 {
		opts.TryTimeout = DefaultTryTimeout
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxClients <= 0 {
		opts.MaxClients = DefaultMaxClients
	}
	hc, err := newHTTPClient(opts.CAPEM, opts.DialTimeout)
	if err != nil {
		return nil, err
	}
	clients, err := lru.New[clientKey, *azkeys.Client](opts.MaxClients)
	if err != nil {
		return nil, fmt.Errorf("keyvault: %w", err)
	}
	return &Wrapper{
		creds: opts.Credentials,
		appID: opts.ApplicationID,
		http:  hc,
		retry: policy.RetryOptions{
			MaxRetries:    int32(max(opts.MaxRetries, -1)),
			RetryDelay:    opts.RetryDelay,
			MaxRetryDelay: opts.MaxRetryDelay,
			TryTimeout:    opts.TryTimeout,
		},
		log:     opts.Logger,
		now:     opts.Now,
		tag:     opts.OwnershipTag,
		clients: clients,
	}, nil
}

// newHTTPClient builds the one transport every vault client shares.
func newHTTPClient(caPEM []byte, dialTimeout time.Duration) (*http.Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if len(caPEM) > 0 && !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("keyvault: KEYVAULT_CA_FILE holds no PEM certificate")
	}
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{
		Proxy: func(r *http.Request) (*url.URL, error) {
			if isLocalhost(r.URL.Hostname()) {
				return nil, nil
			}
			return http.ProxyFromEnvironment(r)
		},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if host, port, err := net.SplitHostPort(addr); err == nil && isLocalhost(host) {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: dialTimeout + 2*time.Second,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 8,
		// A monitor run visits every BYOK tenant's vault once: without a
		// total bound each would keep an idle TLS connection (~40 KiB) for
		// IdleConnTimeout, so memory grew with the tenant count.
		MaxIdleConns:    64,
		IdleConnTimeout: 90 * time.Second,
	}}, nil
}

// isLocalhost reports RFC 6761 loopback names.
func isLocalhost(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// realVaultSuffixes are the Key Vault DNS zones of the Azure clouds; for
// these the challenge's resource is verified, elsewhere (emulators) not.
var realVaultSuffixes = []string{".vault.azure.net", ".vault.azure.cn", ".vault.usgovcloudapi.net", ".managedhsm.azure.net"}

func verifyChallenge(host string) bool {
	host = strings.ToLower(host)
	for _, s := range realVaultSuffixes {
		if strings.HasSuffix(host, s) {
			return true
		}
	}
	return false
}

// client returns the cached azkeys client for ref's vault and credential.
func (w *Wrapper) client(ref keywrap.Ref) (*azkeys.Client, error) {
	u, err := url.Parse(ref.VaultURL)
	if err != nil {
		return nil, err
	}
	vaultURL := "https://" + strings.ToLower(u.Host) + "/"
	key := clientKey{vaultURL: vaultURL, source: ref.Source, tenant: strings.ToLower(ref.TenantID)}
	w.mu.Lock()
	defer w.mu.Unlock()
	if c, ok := w.clients.Get(key); ok {
		return c, nil
	}
	cred, err := w.creds.For(ref)
	if err != nil {
		return nil, err
	}
	c, err := azkeys.NewClient(vaultURL, cred, &azkeys.ClientOptions{
		ClientOptions: azcore.ClientOptions{
			Transport: w.http,
			Retry:     w.retry,
		},
		DisableChallengeResourceVerification: !verifyChallenge(u.Hostname()),
	})
	if err != nil {
		return nil, fmt.Errorf("failed to create the Key Vault client: %w", err)
	}
	w.clients.Add(key, c)
	return c, nil
}
