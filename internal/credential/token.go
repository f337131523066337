package credential

import (
	"context"
	"crypto"
	"crypto/x509"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/twinit/byok-backup/internal/errcode"
)

// Credential is one identity in one tenant. It says what it is (for logs,
// messages and tests) and turns every sign-in failure into KeyVaultAuthFailed.
type Credential struct {
	Mode     Mode
	TenantID string // customer Entra tenant; "" for the platform identity
	ClientID string // application (or managed identity) client id; "" = system-assigned identity

	inner azcore.TokenCredential
}

var _ azcore.TokenCredential = (*Credential)(nil)

// GetToken gets a token from the underlying credential.
func (c *Credential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tk, err := c.inner.GetToken(ctx, opts)
	if err == nil {
		return tk, nil
	}
	if c.TenantID == "" {
		return tk, errcode.Wrap(err, errcode.KeyVaultAuthFailed,
			"The platform identity could not sign in to Entra ID: check the Function App's managed identity (PLATFORM_IDENTITY_CLIENT_ID) and try again.")
	}
	return tk, errcode.Wrap(err, errcode.KeyVaultAuthFailed,
		"The application %s could not sign in to Entra tenant %s: check that the tenant id is right and that an administrator of that tenant has consented to the application (it needs a service principal there).",
		c.ClientID, c.TenantID)
}

// static is the emulator's credential: a fixed bearer token naming the
// caller (API.md §4). The requested tenant is ignored on purpose: the
// emulator, like Key Vault, answers a token for the wrong tenant with 401.
type static string

func (s static) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(s), ExpiresOn: time.Now().Add(time.Hour), RefreshOn: time.Now().Add(30 * time.Minute)}, nil
}

type certificate struct {
	chain []*x509.Certificate
	key   crypto.PrivateKey
}
