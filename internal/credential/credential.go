// Package credential builds the token credentials the service signs in to
// Key Vault with: one per customer Entra tenant for the multi-tenant BYOK
// application (BYOK_APP_CLIENT_ID), and one for the platform identity.
//
// Modes (BYOK_CREDENTIAL): federated (default: a user-assigned managed
// identity's token presented as client assertion, the pattern Azure documents
// for cross-tenant customer-managed keys), secret, certificate, emulator.
// Platform modes (PLATFORM_CREDENTIAL): managed-identity (default), emulator.
//
// Every sign-in failure is returned as *errcode.Error with code
// KeyVaultAuthFailed, so the Key Vault adapter needs no knowledge of
// azidentity's error types.
package credential

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// Mode is how an identity signs in.
type Mode string

// BYOK_CREDENTIAL and PLATFORM_CREDENTIAL values.
const (
	Federated       Mode = "federated"
	Secret          Mode = "secret"
	Certificate     Mode = "certificate"
	Emulator        Mode = "emulator"
	ManagedIdentity Mode = "managed-identity"
)

// TokenExchangeScope is the scope of the managed identity token used as
// client assertion (api://AzureADTokenExchange audience, public cloud).
const TokenExchangeScope = "api://AzureADTokenExchange/.default"

// Options configures a [Source]. Field comments name the app setting.
type Options struct {
	Mode        Mode   // BYOK_CREDENTIAL; "" = federated
	AppClientID string // BYOK_APP_CLIENT_ID: the multi-tenant application customers grant access to

	// federated: client id of the user-assigned managed identity that is a
	// federated credential of the application (BYOK_FEDERATED_IDENTITY_CLIENT_ID).
	FederatedIdentityClientID string
	// secret: BYOK_CLIENT_SECRET.
	ClientSecret string `json:"-"`
	// certificate: BYOK_CLIENT_CERTIFICATE_PATH (PEM or PFX with the private
	// key) and BYOK_CLIENT_CERTIFICATE_PASSWORD (PFX only).
	CertificatePath     string
	CertificatePassword string `json:"-"`

	PlatformMode Mode // PLATFORM_CREDENTIAL; "" = managed-identity
	// PlatformIdentityClientID selects a user-assigned managed identity for
	// the platform key (PLATFORM_IDENTITY_CLIENT_ID); "" = system-assigned.
	PlatformIdentityClientID string

	// ClientOptions is passed to every azidentity credential (transport,
	// retries, cloud). Zero value = defaults; tests inject a transport here.
	ClientOptions azcore.ClientOptions

	// MaxCustomers bounds the cached customer credentials (one per Entra
	// tenant, each holding its token cache); the least recently used is
	// dropped and signs in again when next needed. 0 = DefaultMaxCustomers.
	MaxCustomers int
}

// DefaultMaxCustomers is the default [Options.MaxCustomers].
const DefaultMaxCustomers = 1024

// Source hands out credentials, one per customer Entra tenant, cached.
// It is safe for concurrent use.
type Source struct {
	opts  Options
	certs *certificate // parsed once at New for the certificate mode

	mu        sync.Mutex
	customers *lru.Cache[string, *Credential] // by lower-case tenant id
	platform  *Credential
	exchange  azcore.TokenCredential // federated: the managed identity, shared by all tenants
}

// New checks opts and returns a Source. Nothing is sent over the network.
func New(opts Options) (*Source, error) {
	if opts.Mode == "" {
		opts.Mode = Federated
	}
	if opts.PlatformMode == "" {
		opts.PlatformMode = ManagedIdentity
	}
	if opts.MaxCustomers <= 0 {
		opts.MaxCustomers = DefaultMaxCustomers
	}
	customers, err := lru.New[string, *Credential](opts.MaxCustomers)
	if err != nil {
		return nil, fmt.Errorf("credential: %w", err)
	}
	s := &Source{opts: opts, customers: customers}
	switch opts.Mode {
	case Federated, Secret, Certificate, Emulator:
	default:
		return nil, fmt.Errorf("BYOK_CREDENTIAL %q is not one of federated, secret, certificate, emulator", opts.Mode)
	}
	if !keywrap.ValidTenantID(opts.AppClientID) { // client ids are GUIDs too
		return nil, fmt.Errorf("BYOK_APP_CLIENT_ID %q is not a client id (GUID)", opts.AppClientID)
	}
	switch opts.Mode {
	case Secret:
		if opts.ClientSecret == "" {
			return nil, fmt.Errorf("BYOK_CREDENTIAL=secret needs BYOK_CLIENT_SECRET")
		}
	case Certificate:
		c, err := loadCertificate(opts.CertificatePath, opts.CertificatePassword)
		if err != nil {
			return nil, err
		}
		s.certs = c
	}
	switch opts.PlatformMode {
	case ManagedIdentity, Emulator:
	default:
		return nil, fmt.Errorf("PLATFORM_CREDENTIAL %q is not one of managed-identity, emulator", opts.PlatformMode)
	}
	return s, nil
}

// For returns the credential for a key reference: the platform identity for
// platform keys, the customer tenant's credential otherwise.
func (s *Source) For(ref keywrap.Ref) (azcore.TokenCredential, error) {
	if ref.Source == keywrap.Platform {
		return s.Platform()
	}
	return s.Customer(ref.TenantID)
}

// Customer returns the (cached) credential of the BYOK application in the
// customer's Entra tenant.
func (s *Source) Customer(tenantID string) (*Credential, error) {
	if !keywrap.ValidTenantID(tenantID) {
		return nil, errcode.New(errcode.InvalidRequest,
			"%q is not an Entra tenant id: use the directory (tenant) id GUID of the tenant that owns the key vault.", tenantID)
	}
	key := lower(tenantID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.customers.Get(key); ok {
		return c, nil
	}
	inner, err := s.newCustomer(key)
	if err != nil {
		return nil, err
	}
	c := &Credential{Mode: s.opts.Mode, TenantID: key, ClientID: s.opts.AppClientID, inner: inner}
	s.customers.Add(key, c)
	return c, nil
}

func (s *Source) newCustomer(tenant string) (azcore.TokenCredential, error) {
	o := s.opts
	switch o.Mode {
	case Emulator:
		return static("emulator." + o.AppClientID + "." + tenant), nil
	case Secret:
		return azidentity.NewClientSecretCredential(tenant, o.AppClientID, o.ClientSecret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: o.ClientOptions})
	case Certificate:
		return azidentity.NewClientCertificateCredential(tenant, o.AppClientID, s.certs.chain, s.certs.key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: o.ClientOptions, SendCertificateChain: true})
	default: // Federated
		if s.exchange == nil {
			mi, err := managedIdentity(o.FederatedIdentityClientID, o.ClientOptions)
			if err != nil {
				return nil, err
			}
			s.exchange = mi
		}
		mi := s.exchange
		assertion := func(ctx context.Context) (string, error) {
			tk, err := mi.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{TokenExchangeScope}})
			return tk.Token, err
		}
		return azidentity.NewClientAssertionCredential(tenant, o.AppClientID, assertion,
			&azidentity.ClientAssertionCredentialOptions{ClientOptions: o.ClientOptions})
	}
}

// Platform returns the platform identity's credential.
func (s *Source) Platform() (*Credential, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.platform != nil {
		return s.platform, nil
	}
	var inner azcore.TokenCredential
	if s.opts.PlatformMode == Emulator {
		inner = static("emulator.platform")
	} else {
		mi, err := managedIdentity(s.opts.PlatformIdentityClientID, s.opts.ClientOptions)
		if err != nil {
			return nil, err
		}
		inner = mi
	}
	s.platform = &Credential{Mode: s.opts.PlatformMode, ClientID: s.opts.PlatformIdentityClientID, inner: inner}
	return s.platform, nil
}

func managedIdentity(clientID string, co azcore.ClientOptions) (azcore.TokenCredential, error) {
	o := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: co}
	if clientID != "" {
		o.ID = azidentity.ClientID(clientID)
	}
	mi, err := azidentity.NewManagedIdentityCredential(o)
	if err != nil {
		return nil, fmt.Errorf("failed to set up the managed identity credential: %w", err)
	}
	return mi, nil
}

func loadCertificate(path, password string) (*certificate, error) {
	if path == "" {
		return nil, fmt.Errorf("BYOK_CREDENTIAL=certificate needs BYOK_CLIENT_CERTIFICATE_PATH")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read BYOK_CLIENT_CERTIFICATE_PATH: %w", err)
	}
	chain, key, err := azidentity.ParseCertificates(data, []byte(password))
	if err != nil {
		return nil, fmt.Errorf("failed to parse the certificate in BYOK_CLIENT_CERTIFICATE_PATH: %w", err)
	}
	return &certificate{chain: chain, key: key}, nil
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
