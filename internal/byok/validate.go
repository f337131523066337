package byok

import (
	"context"
	"fmt"

	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keycheck"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// Validator validates a customer key by API.md's checks
// (vaultReachable … wrapRoundTrip). *audit.Validator is the production one
// (keycheck, recorded as a KeyAudit "validate" row with the tenant from the
// context's audit.Scope, which the service sets); [ValidatorFunc] adapts
// keycheck.Validate without auditing.
type Validator interface {
	Validate(ctx context.Context, ref keywrap.Ref) keycheck.Result
}

// ValidatorFunc adapts a function to [Validator].
type ValidatorFunc func(ctx context.Context, ref keywrap.Ref) keycheck.Result

// Validate calls f.
func (f ValidatorFunc) Validate(ctx context.Context, ref keywrap.Ref) keycheck.Result {
	return f(ctx, ref)
}

// CheckResult is one named check, as the contract reports it.
type CheckResult = keycheck.Check

// ValidationError is a failed key validation: 422 with the checks.
type ValidationError struct {
	Err    *errcode.Error // the cause code and the customer-facing message
	Checks []CheckResult
}

func (e *ValidationError) Error() string { return "key validation failed: " + e.Err.Error() }

func (e *ValidationError) Unwrap() error { return e.Err }

// keyCauses are the codes a validation failure reports as itself; any
// other failure is KeyValidationFailed (API.md §2).
var keyCauses = map[errcode.Code]bool{
	errcode.KeyDisabled: true, errcode.KeyNotFound: true, errcode.KeyAccessDenied: true,
	errcode.KeyVaultUnreachable: true, errcode.KeyVaultAuthFailed: true,
	errcode.KeyOperationNotPermitted: true, errcode.UnsupportedKeyType: true, errcode.KeyOwnershipNotProven: true,
}

// keyError turns the cause of a failed validation or key use into the
// error shown to the customer: the specific key code when one applies, and
// a sentence that says what to do. Messages are written here rather than
// taken from the cause so they always name the application to grant and
// never carry Azure response text.
func (s *Service) keyError(tenant string, set Settings, cause error) *errcode.Error {
	code := errcode.CodeOf(cause)
	key := fmt.Sprintf("key %q in Key Vault %q", set.KeyName, set.KeyVaultName)
	if set.KeyVersion != "" {
		key = fmt.Sprintf("version %s of key %q in Key Vault %q", set.KeyVersion, set.KeyName, set.KeyVaultName)
	}
	var msg string
	switch code {
	case errcode.KeyVaultUnreachable:
		msg = fmt.Sprintf("Key Vault %q could not be reached: check the vault name and that the vault's network settings allow this service, then try again.", set.KeyVaultName)
	case errcode.KeyVaultAuthFailed:
		msg = fmt.Sprintf("Application %s could not sign in to Entra tenant %s: check the tenant id and create the application's service principal in that tenant (New-AzADServicePrincipal -ApplicationId %s), then try again.", s.appID, set.TenantID, s.appID)
	case errcode.KeyNotFound:
		msg = fmt.Sprintf("The %s was not found: check the key name and version, then try again.", key)
	case errcode.KeyDisabled:
		msg = fmt.Sprintf("The %s is disabled or outside its activation and expiry dates: enable it in Key Vault, then try again.", key)
	case errcode.KeyAccessDenied:
		msg = fmt.Sprintf("Application %s is not allowed to use the %s: grant it the get, wrapKey and unwrapKey key permissions (or the Key Vault Crypto Service Encryption User role), then try again.", s.appID, key)
	case errcode.KeyOperationNotPermitted:
		msg = fmt.Sprintf("The %s does not permit wrapKey and unwrapKey: allow both operations on the key, then try again.", key)
	case errcode.KeyOwnershipNotProven:
		msg = fmt.Sprintf("The %s does not show that it belongs to tenant %s: whoever manages the key must set its tag %q to %q (or add %s to the tenant ids it lists, separated by commas), then try again.", key, tenant, s.tag, tenant, tenant)
	case errcode.UnsupportedKeyType:
		msg = fmt.Sprintf("The %s is not an RSA or RSA-HSM key of at least 2048 bits: create such a key and use it instead.", key)
	default:
		_, detail := errcode.Public(cause)
		code = errcode.KeyValidationFailed
		msg = fmt.Sprintf("The %s could not be validated: %s", key, detail)
	}
	return errcode.Wrap(cause, code, "%s", msg)
}
