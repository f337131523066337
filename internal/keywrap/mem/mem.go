// Package mem is an in-memory [keywrap.Wrapper] with vaults of RSA keys,
// versions, enable/disable, validity dates, key_ops and tags, for tests of
// the services that wrap keys. It answers with the same error codes as the
// Key Vault adapter (keywrap/keyvault); keywrap/wraptest holds the two to
// the same behaviour. It knows no grants, sign-ins or transport failures:
// those stay tested against the emulator.
package mem

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// URLTemplate is the vault URL template (KEYVAULT_URL_TEMPLATE form) of the
// in-memory vaults.
const URLTemplate = "https://{vault}.vault.azure.net/"

// Options tune [New]; the zero value is usable.
type Options struct {
	// OwnershipTag is BYOK_OWNERSHIP_TAG: when set, customer keys must be
	// tagged for ref.Owner, as keyvault.Options.OwnershipTag.
	OwnershipTag string
	// Now is the clock for validity dates (default time.Now).
	Now func() time.Time
}

// Wrapper is an in-memory [keywrap.Wrapper] and the control of its vaults
// (the same methods as the emulator's). Safe for concurrent use.
type Wrapper struct {
	tag string
	now func() time.Time

	mu     sync.Mutex
	vaults map[string]map[string]*key // vault name → key name → key
}

type key struct {
	versions []*version // the last is current
	deleted  bool
}

type version struct {
	id       string
	kty      string
	size     int
	priv     *rsa.PrivateKey // nil for EC keys
	enabled  bool
	ops      []string
	nbf, exp int64
	tags     map[string]string
}

var _ keywrap.Wrapper = (*Wrapper)(nil)

// New returns a Wrapper with no vaults.
func New(opts Options) *Wrapper {
	w := &Wrapper{tag: opts.OwnershipTag, now: opts.Now, vaults: map[string]map[string]*key{}}
	if w.now == nil {
		w.now = time.Now
	}
	return w
}

// VaultURL is the URL of the named vault.
func VaultURL(vaultName string) string { return strings.Replace(URLTemplate, "{vault}", vaultName, 1) }

// CreateVault creates an empty vault (no-op if it exists).
func (w *Wrapper) CreateVault(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.vaults[name] == nil {
		w.vaults[name] = map[string]*key{}
	}
}

var rsaOps = []string{"encrypt", "decrypt", "sign", "verify", keywrap.OpWrapKey, keywrap.OpUnwrapKey}

// CreateKey creates a key (or a new version of it) in an existing vault and
// returns its versioned kid. kty is "RSA" or "RSA-HSM" (size 0 = 2048) or
// "EC"/"EC-HSM"; ops nil = all RSA operations.
func (w *Wrapper) CreateKey(vaultName, name, kty string, size int, ops []string) (string, error) {
	v := &version{kty: kty, size: size, enabled: true, ops: slices.Clone(ops)}
	switch kty {
	case "RSA", "RSA-HSM":
		if v.size == 0 {
			v.size = 2048
		}
		priv, err := rsa.GenerateKey(rand.Reader, v.size)
		if err != nil {
			return "", fmt.Errorf("mem: %w", err)
		}
		v.priv = priv
		if ops == nil {
			v.ops = slices.Clone(rsaOps)
		}
	case "EC", "EC-HSM":
		if ops == nil {
			v.ops = []string{"sign", "verify"}
		}
	default:
		return "", fmt.Errorf("mem: unsupported key type %q", kty)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	keys, ok := w.vaults[vaultName]
	if !ok {
		return "", fmt.Errorf("mem: vault %q not found", vaultName)
	}
	k := keys[name]
	if k != nil && k.deleted {
		return "", fmt.Errorf("mem: key %q is deleted", name)
	}
	if k == nil {
		k = &key{}
		keys[name] = k
	}
	return w.add(vaultName, name, k, v), nil
}

func (w *Wrapper) add(vaultName, name string, k *key, v *version) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	v.id = hex.EncodeToString(b[:])
	k.versions = append(k.versions, v)
	return keywrap.Ref{VaultURL: VaultURL(vaultName), KeyName: name, Version: v.id}.KeyID()
}

// RotateKey adds a new current version with the same type, size, key_ops
// and tags and returns its kid.
func (w *Wrapper) RotateKey(vaultName, name string) (string, error) {
	w.mu.Lock()
	k, err := w.keyLocked(vaultName, name)
	var cur version
	if err == nil {
		cur = *k.versions[len(k.versions)-1]
	}
	w.mu.Unlock()
	if err != nil {
		return "", err
	}
	v := &version{kty: cur.kty, size: cur.size, enabled: true, ops: slices.Clone(cur.ops), tags: maps.Clone(cur.tags)}
	if cur.priv != nil {
		if v.priv, err = rsa.GenerateKey(rand.Reader, cur.size); err != nil {
			return "", fmt.Errorf("mem: %w", err)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.add(vaultName, name, k, v), nil
}

func (w *Wrapper) keyLocked(vaultName, name string) (*key, error) {
	k := w.vaults[vaultName][name]
	if k == nil || k.deleted {
		return nil, fmt.Errorf("mem: key %q not found in vault %q", name, vaultName)
	}
	return k, nil
}

func (k *key) version(id string) *version {
	if id == "" {
		return k.versions[len(k.versions)-1]
	}
	for _, v := range k.versions {
		if strings.EqualFold(v.id, id) {
			return v
		}
	}
	return nil
}

func (w *Wrapper) update(vaultName, name, id string, f func(*version)) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	k, err := w.keyLocked(vaultName, name)
	if err != nil {
		return err
	}
	v := k.version(id)
	if v == nil {
		return fmt.Errorf("mem: version %q of key %q not found", id, name)
	}
	f(v)
	return nil
}

// SetTags replaces the tags of one version ("" = current).
func (w *Wrapper) SetTags(vaultName, name, id string, tags map[string]string) error {
	return w.update(vaultName, name, id, func(v *version) { v.tags = maps.Clone(tags) })
}

// SetEnabled enables or disables one version ("" = current).
func (w *Wrapper) SetEnabled(vaultName, name, id string, enabled bool) error {
	return w.update(vaultName, name, id, func(v *version) { v.enabled = enabled })
}

// SetKeyOps replaces the key_ops of one version ("" = current).
func (w *Wrapper) SetKeyOps(vaultName, name, id string, ops []string) error {
	return w.update(vaultName, name, id, func(v *version) { v.ops = slices.Clone(ops) })
}

// SetExpiry sets nbf and exp of one version ("" = current); zero unsets.
func (w *Wrapper) SetExpiry(vaultName, name, id string, nbf, exp time.Time) error {
	return w.update(vaultName, name, id, func(v *version) { v.nbf, v.exp = unix(nbf), unix(exp) })
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// DeleteKey deletes a key: afterwards it is not found.
func (w *Wrapper) DeleteKey(vaultName, name string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	k, err := w.keyLocked(vaultName, name)
	if err != nil {
		return err
	}
	k.deleted = true
	return nil
}

// lookup returns a copy of the version in ref (or the current one) and its
// info, with the errors the Key Vault adapter gives for a missing vault,
// key or version.
func (w *Wrapper) lookup(ref keywrap.Ref) (version, keywrap.KeyInfo, error) {
	vaultName := keywrap.VaultName(ref.VaultURL)
	w.mu.Lock()
	defer w.mu.Unlock()
	keys, ok := w.vaults[vaultName]
	if !ok || !strings.EqualFold(strings.TrimRight(ref.VaultURL, "/"), strings.TrimRight(VaultURL(vaultName), "/")) {
		return version{}, keywrap.KeyInfo{}, errcode.New(errcode.KeyVaultUnreachable,
			"Key Vault %s could not be reached: check that the vault exists and its name is spelled correctly, and that its firewall allows the service; then try again.", vaultName)
	}
	var v *version
	if k := keys[ref.KeyName]; k != nil && !k.deleted {
		v = k.version(ref.Version)
	}
	if v == nil {
		ver := ""
		if ref.Version != "" {
			ver = " (version " + ref.Version + ")"
		}
		return version{}, keywrap.KeyInfo{}, errcode.New(errcode.KeyNotFound,
			"Key %s%s was not found in vault %s: check the key name and version, or recover the key if it was deleted.", ref.KeyName, ver, vaultName)
	}
	info := keywrap.KeyInfo{
		KeyID:   keywrap.Ref{VaultURL: VaultURL(vaultName), KeyName: ref.KeyName, Version: v.id}.KeyID(),
		Version: v.id, KeyType: v.kty, KeySize: v.size, Enabled: v.enabled,
		Operations: slices.Clone(v.ops), NotBefore: v.nbf, Expires: v.exp, Tags: maps.Clone(v.tags),
	}
	return *v, info, nil
}

func (w *Wrapper) checksOwner(ref keywrap.Ref) bool {
	return w.tag != "" && ref.Source == keywrap.Customer
}

// inspect is Inspect after CheckRef; it also returns the version.
func (w *Wrapper) inspect(ref keywrap.Ref) (version, keywrap.KeyInfo, error) {
	v, info, err := w.lookup(ref)
	if err != nil {
		return version{}, keywrap.KeyInfo{}, err
	}
	if w.checksOwner(ref) {
		if ref.Owner == "" {
			return version{}, keywrap.KeyInfo{}, errcode.New(errcode.Internal, "The customer key reference names no tenant to check the key's ownership tag against.")
		}
		if err := keywrap.CheckOwnership(info, w.tag, ref.Owner); err != nil {
			return version{}, keywrap.KeyInfo{}, err
		}
		info.OwnershipTag = w.tag
	}
	return v, info, nil
}

// Inspect reads the key version in ref (or the current one).
func (w *Wrapper) Inspect(ctx context.Context, ref keywrap.Ref) (keywrap.KeyInfo, error) {
	if err := keywrap.CheckRef(ref); err != nil {
		return keywrap.KeyInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return keywrap.KeyInfo{}, err
	}
	_, info, err := w.inspect(ref)
	return info, err
}

// Wrap refuses an unusable key version as the Key Vault adapter does and
// wraps dataKey with RSA-OAEP-256.
func (w *Wrapper) Wrap(ctx context.Context, ref keywrap.Ref, dataKey []byte) (keywrap.Wrapped, error) {
	if err := keywrap.CheckRef(ref); err != nil {
		return keywrap.Wrapped{}, err
	}
	if len(dataKey) == 0 {
		return keywrap.Wrapped{}, errcode.New(errcode.Internal, "No data key was given to wrap.")
	}
	if err := ctx.Err(); err != nil {
		return keywrap.Wrapped{}, err
	}
	v, info, err := w.inspect(ref)
	if err != nil {
		return keywrap.Wrapped{}, err
	}
	if err := keywrap.CheckEnabled(info, w.now()); err != nil {
		return keywrap.Wrapped{}, err
	}
	if err := keywrap.CheckType(info); err != nil {
		return keywrap.Wrapped{}, err
	}
	if err := keywrap.CheckOperations(info, keywrap.OpWrapKey); err != nil {
		return keywrap.Wrapped{}, err
	}
	out, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &v.priv.PublicKey, dataKey, nil)
	if err != nil {
		return keywrap.Wrapped{}, errcode.Wrap(err, errcode.UnsupportedKeyType,
			"Key %s in vault %s refused to wrap with RSA-OAEP-256: use an RSA or RSA-HSM key of at least 2048 bits.", ref.KeyName, keywrap.VaultName(ref.VaultURL))
	}
	return keywrap.Wrapped{KeyID: info.KeyID, Version: info.Version, Algorithm: keywrap.Algorithm, WrappedKey: out}, nil
}

// Unwrap unwraps with exactly the recorded version. Expired keys still
// unwrap (as in Key Vault); disabled ones and ones without unwrapKey don't.
func (w *Wrapper) Unwrap(ctx context.Context, ref keywrap.Ref, wr keywrap.Wrapped) ([]byte, error) {
	if err := keywrap.CheckRef(ref); err != nil {
		return nil, err
	}
	id, err := keywrap.UnwrapVersion(ref, wr)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ref.Version = id
	v, _, err := w.inspect(ref)
	if err != nil {
		return nil, err
	}
	vault := keywrap.VaultName(ref.VaultURL)
	switch {
	case !v.enabled:
		return nil, errcode.New(errcode.KeyDisabled,
			"Key %s in vault %s is disabled: enable the key version in the key vault, or configure another key.", ref.KeyName, vault)
	case !slices.Contains(v.ops, keywrap.OpUnwrapKey):
		return nil, errcode.New(errcode.KeyOperationNotPermitted,
			"Key %s in vault %s does not permit the %s operation: add wrapKey and unwrapKey to the key's permitted operations.", ref.KeyName, vault, keywrap.OpUnwrapKey)
	case v.priv == nil:
		return nil, errcode.New(errcode.UnsupportedKeyType,
			"Key %s in vault %s refused to wrap with RSA-OAEP-256: use an RSA or RSA-HSM key of at least 2048 bits.", ref.KeyName, vault)
	}
	out, err := rsa.DecryptOAEP(sha256.New(), nil, v.priv, wr.WrappedKey, nil)
	if err != nil {
		return nil, errcode.Wrap(err, errcode.IntegrityCheckFailed,
			"Key %s in vault %s could not unwrap the data key: the wrapped key was not made by this key version or was altered.", ref.KeyName, vault)
	}
	return out, nil
}
