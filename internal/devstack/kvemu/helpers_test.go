package kvemu_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/twinit/byok-backup/internal/devstack/kvemu"
)

const (
	tenantA = "11111111-1111-1111-1111-111111111111"
	tenantB = "22222222-2222-2222-2222-222222222222"
	appID   = "33333333-3333-3333-3333-333333333333"
)

// staticCred hands out a fixed bearer token and records the tenant the
// challenge asked for.
type staticCred struct {
	token   string
	tenants chan string
}

func (c staticCred) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if c.tenants != nil {
		select {
		case c.tenants <- o.TenantID:
		default:
		}
	}
	return azcore.AccessToken{Token: c.token, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// newClient is the real azkeys client against the emulator over TLS, with
// retries off so that each call is exactly one attempt.
func newClient(t testing.TB, e *kvemu.Emulator, vault, token string) *azkeys.Client {
	t.Helper()
	return newClientOpts(t, e, vault, staticCred{token: token}, policy.RetryOptions{MaxRetries: -1}, "")
}

func newClientOpts(t testing.TB, e *kvemu.Emulator, vault string, cred azcore.TokenCredential, retry policy.RetryOptions, apiVersion string) *azkeys.Client {
	t.Helper()
	c, err := azkeys.NewClient(e.VaultURL(vault), cred, &azkeys.ClientOptions{
		ClientOptions: azcore.ClientOptions{
			Transport:  e.HTTPClient(),
			Retry:      retry,
			APIVersion: apiVersion,
		},
		DisableChallengeResourceVerification: true,
	})
	if err != nil {
		t.Fatalf("azkeys.NewClient: %v", err)
	}
	return c
}

// vaultWithKey starts an emulator with one vault (tenant A, model m) and
// one RSA-2048 key "k1"; it returns the emulator and an admin client.
func vaultWithKey(t *testing.T, m kvemu.PermissionModel) (*kvemu.Emulator, *azkeys.Client) {
	t.Helper()
	e := kvemu.TestStart(t)
	if err := e.CreateVault("kv1", tenantA, m); err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateKey("kv1", "k1", "RSA", 2048, nil); err != nil {
		t.Fatal(err)
	}
	return e, newClient(t, e, "kv1", kvemu.AdminToken)
}

type serviceError struct {
	status      int
	code, inner string
}

// asServiceError reads status, error.code and error.innererror.code from an
// azcore.ResponseError, the way the adapter must (docs/research/keyvault.md §0.7).
func asServiceError(t testing.TB, err error) serviceError {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("want *azcore.ResponseError, got %T: %v", err, err)
	}
	body, perr := runtime.Payload(re.RawResponse)
	if perr != nil {
		t.Fatalf("read error body: %v", perr)
	}
	var b struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Inner   *struct {
				Code string `json:"code"`
			} `json:"innererror"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatalf("error body is not the service's JSON shape: %v: %s", err, body)
	}
	if b.Error.Message == "" {
		t.Errorf("error body has no message: %s", body)
	}
	if b.Error.Code != re.ErrorCode {
		t.Errorf("error.code %q != ResponseError.ErrorCode %q", b.Error.Code, re.ErrorCode)
	}
	se := serviceError{status: re.StatusCode, code: re.ErrorCode}
	if b.Error.Inner != nil {
		se.inner = b.Error.Inner.Code
	}
	return se
}

func wantServiceError(t testing.TB, err error, want serviceError) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %+v, got success", want)
	}
	if got := asServiceError(t, err); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func wrapParams(alg azkeys.EncryptionAlgorithm, v []byte) azkeys.KeyOperationParameters {
	return azkeys.KeyOperationParameters{Algorithm: &alg, Value: v}
}
