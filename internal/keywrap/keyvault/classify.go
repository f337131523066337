package keyvault

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// malformedError is an answer from Key Vault that doesn't fit the API (a
// missing kid, a kid for another key): never expected from the service.
type malformedError struct{ why string }

func (e *malformedError) Error() string { return "keyvault: unexpected answer: " + e.why }

func errMalformed(why string) error { return &malformedError{why} }

// detail is what classification reads from a Key Vault error response.
type detail struct {
	status      int
	code, inner string
}

// details extracts status, error code and innererror code from the first
// *azcore.ResponseError in err's chain (zero detail if there is none). The
// innererror code is only in the body, so the body is parsed; message text
// is never looked at.
func details(err error) detail {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return detail{}
	}
	d := detail{status: re.StatusCode, code: re.ErrorCode}
	if re.RawResponse != nil {
		if body, perr := runtime.Payload(re.RawResponse); perr == nil {
			var e struct {
				Error *struct {
					Code  string `json:"code"`
					Inner *struct {
						Code string `json:"code"`
					} `json:"innererror"`
				} `json:"error"`
			}
			if json.Unmarshal(body, &e) == nil && e.Error != nil {
				if d.code == "" {
					d.code = e.Error.Code
				}
				if e.Error.Inner != nil {
					d.inner = e.Error.Inner.Code
				}
			}
		}
	}
	return d
}

// classify turns any error from a Key Vault call into an *errcode.Error with
// a contract code and a message naming cause and fix. Errors that already
// carry a code (sign-in failures from the credential, our own checks) keep it.
// A caller's own cancellation is returned as is: it says nothing about the key.
func (w *Wrapper) classify(err error, op string, ref keywrap.Ref) error {
	if err == nil {
		return nil
	}
	vault, key := keywrap.VaultName(ref.VaultURL), ref.KeyName
	if e, ok := errcode.As(err); ok {
		// Sign-in failures come from the credential, which doesn't know
		// the vault: say which vault the sign-in was for.
		if e.Code == errcode.KeyVaultAuthFailed && ref.Source == keywrap.Customer {
			return errcode.Wrap(err, errcode.KeyVaultAuthFailed,
				"The application %s could not sign in to Entra tenant %s to use vault %s: check that tenantId is the tenant that owns the vault and that an administrator there has consented to the application.",
				w.app(), ref.TenantID, vault)
		}
		return err
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		var me *malformedError
		switch {
		case errors.As(err, &me):
			return errcode.Wrap(err, errcode.Internal,
				"Key Vault %s gave an unexpected answer for key %s: try again later.", vault, key)
		case errors.Is(err, context.Canceled):
			return err
		}
		// Transport: DNS, refused or reset connections, TLS, per-try or
		// overall deadlines. azcore has already retried these.
		return errcode.Wrap(err, errcode.KeyVaultUnreachable,
			"Key Vault %s could not be reached: check that the vault exists and its name is spelled correctly, and that its firewall allows the service; then try again.", vault)
	}
	d := details(err)
	switch d.status {
	case http.StatusUnauthorized:
		return errcode.Wrap(err, errcode.KeyVaultAuthFailed, "%s", w.authMessage(ref, vault))
	case http.StatusNotFound:
		version := ""
		if ref.Version != "" {
			version = " (version " + ref.Version + ")"
		}
		return errcode.Wrap(err, errcode.KeyNotFound,
			"Key %s%s was not found in vault %s: check the key name and version, or recover the key if it was deleted.", key, version, vault)
	case http.StatusForbidden:
		switch d.inner {
		case "KeyDisabled":
			return errcode.Wrap(err, errcode.KeyDisabled,
				"Key %s in vault %s is disabled: enable the key version in the key vault, or configure another key.", key, vault)
		case "KeyExpired", "KeyNotYetValid":
			return errcode.Wrap(err, errcode.KeyDisabled,
				"Key %s in vault %s is outside its activation and expiration dates: rotate the key or change those dates.", key, vault)
		case "KeyOperationForbidden":
			return errcode.Wrap(err, errcode.KeyOperationNotPermitted,
				"Key %s in vault %s does not permit the %s operation: add wrapKey and unwrapKey to the key's permitted operations.", key, vault, op)
		case "ForbiddenByFirewall":
			return errcode.Wrap(err, errcode.KeyAccessDenied,
				"The firewall of vault %s refused the service: allow trusted Microsoft services or the service's addresses in the vault's networking settings.", vault)
		}
		return errcode.Wrap(err, errcode.KeyAccessDenied, "%s", w.deniedMessage(ref, vault, key))
	case http.StatusTooManyRequests:
		return errcode.Wrap(err, errcode.Throttled,
			"Key Vault %s is throttling requests and kept doing so after retries: try again in a few minutes.", vault)
	case http.StatusBadRequest:
		if op == opUnwrap {
			return errcode.Wrap(err, errcode.IntegrityCheckFailed,
				"Key %s in vault %s could not unwrap the data key: the wrapped key was not made by this key version or was altered.", key, vault)
		}
		if op == opWrap {
			return errcode.Wrap(err, errcode.UnsupportedKeyType,
				"Key %s in vault %s refused to wrap with RSA-OAEP-256: use an RSA or RSA-HSM key of at least 2048 bits.", key, vault)
		}
	case http.StatusRequestTimeout, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return errcode.Wrap(err, errcode.KeyVaultUnreachable,
			"Key Vault %s is failing to answer (it returned server errors after retries): try again later.", vault)
	}
	return errcode.Wrap(err, errcode.Internal,
		"Key Vault %s refused the %s request for key %s unexpectedly: try again later.", vault, op, key)
}

func (w *Wrapper) authMessage(ref keywrap.Ref, vault string) string {
	if ref.Source == keywrap.Platform {
		return "Key Vault " + vault + " did not accept the platform identity's sign-in: check PLATFORM_KEY_ID and the Function App's managed identity."
	}
	return "Key Vault " + vault + " did not accept the sign-in of application " + w.app() + " from Entra tenant " + ref.TenantID +
		": check that tenantId is the tenant that owns the vault and that an administrator there has consented to the application."
}

func (w *Wrapper) deniedMessage(ref keywrap.Ref, vault, key string) string {
	if ref.Source == keywrap.Platform {
		return "Key Vault " + vault + " denied the platform identity access to key " + key +
			": grant it the get, wrapKey and unwrapKey permissions (or the Key Vault Crypto Service Encryption User role)."
	}
	return "Key Vault denied access to key " + key + ": grant the application " + w.app() +
		" the get, wrapKey and unwrapKey permissions (or the Key Vault Crypto Service Encryption User role) on vault " + vault + "."
}

func (w *Wrapper) app() string {
	if w.appID == "" {
		return "of the backup service"
	}
	return w.appID
}
