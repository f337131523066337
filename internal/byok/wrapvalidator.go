package byok

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"time"

	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// The contract's check names, in the order they run.
const (
	CheckVaultReachable = "vaultReachable"
	CheckAuthenticated  = "authenticated"
	CheckKeyFound       = "keyFound"
	CheckKeyEnabled     = "keyEnabled"
	CheckKeyType        = "keyType"
	CheckKeyOperations  = "keyOperations"
	CheckWrapRoundTrip  = "wrapRoundTrip"
)

var checkOrder = []string{CheckVaultReachable, CheckAuthenticated, CheckKeyFound, CheckKeyEnabled,
	CheckKeyType, CheckKeyOperations, CheckWrapRoundTrip}

// WrapperValidator runs the contract's checks through a [keywrap.Wrapper]:
// one Inspect (reachable, authenticated, found, enabled, type, operations)
// and a wrap/unwrap round trip of 32 random bytes with the inspected
// version. It is the service's [Validator] until keycheck replaces it; both
// report the same checks.
type WrapperValidator struct {
	wrapper keywrap.Wrapper
	now     func() time.Time
}

var _ Validator = (*WrapperValidator)(nil)

// NewWrapperValidator returns a Validator over w; now nil is time.Now.
func NewWrapperValidator(w keywrap.Wrapper, now func() time.Time) *WrapperValidator {
	if now == nil {
		now = time.Now
	}
	return &WrapperValidator{wrapper: w, now: now}
}

// Validate implements [Validator].
func (v *WrapperValidator) Validate(ctx context.Context, ref keywrap.Ref) Validation {
	var res Validation
	pass := func(name, detail string) {
		res.Checks = append(res.Checks, CheckResult{Name: name, OK: true, Detail: detail})
	}
	fail := func(name string, err error) Validation {
		_, msg := errcode.Public(err)
		res.Checks = append(res.Checks, CheckResult{Name: name, OK: false, Detail: msg})
		for _, rest := range checkOrder[len(res.Checks):] {
			res.Checks = append(res.Checks, CheckResult{Name: rest, OK: false, Detail: "Not checked: an earlier check failed."})
		}
		res.Err = err
		return res
	}

	info, err := v.wrapper.Inspect(ctx, ref)
	if err != nil {
		// Which check failed follows from how far the request got.
		switch errcode.CodeOf(err) {
		case errcode.KeyVaultUnreachable:
			return fail(CheckVaultReachable, err)
		case errcode.KeyVaultAuthFailed:
			pass(CheckVaultReachable, "The vault answered.")
			return fail(CheckAuthenticated, err)
		case errcode.KeyDisabled:
			pass(CheckVaultReachable, "The vault answered.")
			pass(CheckAuthenticated, "The application signed in.")
			pass(CheckKeyFound, "The key exists.")
			return fail(CheckKeyEnabled, err)
		default: // not found, access denied, throttled, anything else
			pass(CheckVaultReachable, "The vault answered.")
			pass(CheckAuthenticated, "The application signed in.")
			return fail(CheckKeyFound, err)
		}
	}
	res.KeyID, res.KeyType, res.KeySize = info.KeyID, info.KeyType, info.KeySize
	pass(CheckVaultReachable, "The vault answered.")
	pass(CheckAuthenticated, "The application signed in.")
	pass(CheckKeyFound, "Found "+info.KeyID+".")
	if err := keywrap.CheckEnabled(info, v.now()); err != nil {
		return fail(CheckKeyEnabled, err)
	}
	pass(CheckKeyEnabled, "The key version is enabled and within its validity dates.")
	if err := keywrap.CheckType(info); err != nil {
		return fail(CheckKeyType, err)
	}
	pass(CheckKeyType, info.KeyType+" key.")
	if err := keywrap.CheckOperations(info, keywrap.OpWrapKey, keywrap.OpUnwrapKey); err != nil {
		return fail(CheckKeyOperations, err)
	}
	pass(CheckKeyOperations, "wrapKey and unwrapKey are permitted.")

	// Round trip with exactly the inspected version, so the check proves
	// the version that will be recorded.
	pinned := ref
	pinned.Version = info.Version
	probe := make([]byte, 32)
	rand.Read(probe)
	w, err := v.wrapper.Wrap(ctx, pinned, probe)
	if err != nil {
		return fail(CheckWrapRoundTrip, err)
	}
	back, err := v.wrapper.Unwrap(ctx, pinned, w)
	if err != nil {
		return fail(CheckWrapRoundTrip, err)
	}
	defer clear(back)
	if subtle.ConstantTimeCompare(back, probe) != 1 {
		return fail(CheckWrapRoundTrip, errcode.Wrap(errors.New("unwrapped bytes differ"), errcode.KeyValidationFailed,
			"The key unwrapped a different value than it wrapped."))
	}
	pass(CheckWrapRoundTrip, "Wrapped and unwrapped 32 random bytes with RSA-OAEP-256.")
	return res
}
