// Package keycheck validates a customer key the way API.md §2 lists it:
// vaultReachable, authenticated, keyFound, keyOwnership (§5), keyEnabled,
// keyType, keyOperations, wrapRoundTrip, in that order.
//
// The first failing check stops the run: every check after it is still
// reported, with ok=false and a detail starting "not checked:", so callers
// and the Settings page always see the same names in the same order.
// Checks before the failing one are ok. The result names the versioned key
// id that would be used, its type and size, and, on failure, one
// *errcode.Error: the specific key cause when there is one, else
// KeyValidationFailed, with a message that says what the customer must do.
package keycheck

import (
	"bytes"
	"context"
	"crypto/rand"
	"strconv"
	"time"

	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// Check names (API.md §2).
const (
	VaultReachable = "vaultReachable"
	Authenticated  = "authenticated"
	KeyFound       = "keyFound"
	KeyOwnership   = "keyOwnership"
	KeyEnabled     = "keyEnabled"
	KeyType        = "keyType"
	KeyOperations  = "keyOperations"
	WrapRoundTrip  = "wrapRoundTrip"
)

// Names lists the checks in the order they run.
var Names = [...]string{VaultReachable, Authenticated, KeyFound, KeyOwnership, KeyEnabled, KeyType, KeyOperations, WrapRoundTrip}

// Check is one check's outcome, as the API returns it.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Result is a validation's outcome.
type Result struct {
	OK      bool
	Checks  []Check // always all of Names, in order
	KeyID   string  // versioned key id that will be used ("" if the key could not be read)
	KeyType string
	KeySize int
	// Err is nil when OK; else the specific cause (KeyDisabled, KeyNotFound,
	// KeyAccessDenied, …) or KeyValidationFailed.
	Err *errcode.Error
}

// Validate runs the checks against ref with w. It reads the key once
// (Inspect), checks its attributes, then wraps 32 random bytes with exactly
// the version read and unwraps them back. The round trip's wrap and unwrap
// go through w, so pass the undecorated wrapper if validation is audited as
// one "validate" row (see package audit).
func Validate(ctx context.Context, w keywrap.Wrapper, ref keywrap.Ref) Result {
	return validate(ctx, w, ref, time.Now())
}

func validate(ctx context.Context, w keywrap.Wrapper, ref keywrap.Ref, now time.Time) Result {
	r := &run{}
	info, err := w.Inspect(ctx, ref)
	if err != nil {
		return r.fail(inspectFailure(err), err)
	}
	r.res.KeyID, r.res.KeyType, r.res.KeySize = info.KeyID, info.KeyType, info.KeySize
	r.pass(VaultReachable, passed[VaultReachable])
	r.pass(Authenticated, passed[Authenticated])
	r.pass(KeyFound, "Found key version "+info.KeyID+".")
	// The wrapper proves ownership while reading the key (a key not tagged
	// for the tenant fails Inspect with nothing else revealed about it).
	if info.OwnershipTag != "" {
		r.pass(KeyOwnership, "The key's tag "+info.OwnershipTag+" lists tenant "+ref.Owner+".")
	} else {
		r.pass(KeyOwnership, "The ownership check is turned off (BYOK_OWNERSHIP_TAG is empty).")
	}

	if err := keywrap.CheckEnabled(info, now); err != nil {
		return r.fail(KeyEnabled, err)
	}
	r.pass(KeyEnabled, "The key version is enabled and within its validity dates.")
	if err := keywrap.CheckType(info); err != nil {
		return r.fail(KeyType, err)
	}
	r.pass(KeyType, info.KeyType+" "+strconv.Itoa(info.KeySize)+" bits.")
	if err := keywrap.CheckOperations(info, keywrap.OpWrapKey, keywrap.OpUnwrapKey); err != nil {
		return r.fail(KeyOperations, err)
	}
	r.pass(KeyOperations, "The key permits wrapKey and unwrapKey.")

	probe := make([]byte, 32)
	if _, err := rand.Read(probe); err != nil {
		return r.fail(WrapRoundTrip, errcode.Wrap(err, errcode.Internal, "The service could not generate random bytes."))
	}
	pinned := ref
	pinned.Version = info.Version // wrap with the very version checked above
	wrapped, err := w.Wrap(ctx, pinned, probe)
	if err != nil {
		return r.fail(WrapRoundTrip, err)
	}
	back, err := w.Unwrap(ctx, pinned, wrapped)
	if err != nil {
		return r.fail(WrapRoundTrip, err)
	}
	if !bytes.Equal(back, probe) {
		return r.fail(WrapRoundTrip, errcode.New(errcode.KeyValidationFailed,
			"Key %s in vault %s returned different bytes than were wrapped: check the key, or configure another key.",
			ref.KeyName, keywrap.VaultName(ref.VaultURL)))
	}
	r.res.KeyID = wrapped.KeyID
	r.pass(WrapRoundTrip, "Wrapped and unwrapped 32 random bytes with RSA-OAEP-256.")
	r.res.OK = true
	return r.res
}

// inspectFailure is the check a failure to read the key belongs to. A
// denied read is a missing grant, reported on keyFound: sign-in worked.
func inspectFailure(err error) string {
	switch errcode.CodeOf(err) {
	case errcode.KeyVaultUnreachable:
		return VaultReachable
	case errcode.KeyVaultAuthFailed:
		return Authenticated
	case errcode.KeyOwnershipNotProven:
		return KeyOwnership
	case errcode.KeyDisabled:
		return KeyEnabled
	case errcode.UnsupportedKeyType:
		return KeyType
	case errcode.KeyOperationNotPermitted:
		return KeyOperations
	default: // KeyNotFound, KeyAccessDenied, Throttled, InvalidRequest, Internal
		return KeyFound
	}
}

// keyCauses are the codes a validation reports as its own code; anything
// else becomes KeyValidationFailed (API.md §2).
var keyCauses = map[errcode.Code]bool{
	errcode.KeyVaultUnreachable: true, errcode.KeyVaultAuthFailed: true, errcode.KeyNotFound: true,
	errcode.KeyDisabled: true, errcode.KeyAccessDenied: true, errcode.KeyOperationNotPermitted: true,
	errcode.UnsupportedKeyType: true, errcode.KeyValidationFailed: true, errcode.KeyOwnershipNotProven: true,
}

// passed is the detail of a check that passed because a later step was
// reached (only the first three can pass that way).
var passed = map[string]string{
	VaultReachable: "Key Vault answered.",
	Authenticated:  "The service signed in to the vault's tenant.",
	KeyFound:       "The key was found.",
}

type run struct{ res Result }

func (r *run) pass(name, detail string) {
	r.res.Checks = append(r.res.Checks, Check{Name: name, OK: true, Detail: detail})
}

// fail records the failing check (passing the ones before it) and marks the
// rest not checked.
func (r *run) fail(name string, err error) Result {
	code, msg := errcode.Public(err)
	if !keyCauses[code] {
		if code == errcode.Internal || code == errcode.Throttled || code == errcode.IntegrityCheckFailed {
			msg = msg + " The key could not be validated."
		}
		code = errcode.KeyValidationFailed
	}
	for _, n := range Names {
		if n == name {
			break
		}
		if !r.has(n) {
			r.pass(n, passed[n])
		}
	}
	r.res.Checks = append(r.res.Checks, Check{Name: name, OK: false, Detail: msg})
	after := false
	for _, n := range Names {
		if after {
			r.res.Checks = append(r.res.Checks, Check{Name: n, OK: false, Detail: "not checked: " + name + " failed."})
		}
		after = after || n == name
	}
	r.res.OK = false
	r.res.Err = &errcode.Error{Code: code, Message: msg, Err: err}
	return r.res
}

func (r *run) has(name string) bool {
	for _, c := range r.res.Checks {
		if c.Name == name {
			return true
		}
	}
	return false
}
