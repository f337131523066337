package kvemu

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
)

// PermissionModel is how a vault authorises data-plane callers; it only
// changes the innererror code of a denial.
type PermissionModel int

const (
	AccessPolicy PermissionModel = iota // denial innererror ForbiddenByPolicy
	RBAC                                // denial innererror ForbiddenByRbac
)

func (m PermissionModel) String() string {
	if m == RBAC {
		return "rbac"
	}
	return "accessPolicy"
}

// Operations a grant can allow. They are the access-policy key permission
// names, except that "wrapKey"/"unwrapKey" are spelled like key_ops.
var knownOps = []string{
	"get", "list", "create", "update", "delete", "rotate", "import", "recover", "purge",
	"backup", "restore", "wrapKey", "unwrapKey", "encrypt", "decrypt", "sign", "verify",
}

// rsaOps is what a new RSA key allows when the request names no key_ops.
var rsaOps = []string{"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"}

var (
	vaultNameRE = regexp.MustCompile(`^[a-zA-Z](?:[a-zA-Z0-9]|-[a-zA-Z0-9]){2,23}$`)
	keyNameRE   = regexp.MustCompile(`^[a-zA-Z0-9-]{1,127}$`)
)

type vault struct {
	name    string
	tenant  string
	model   PermissionModel
	grants  map[string]map[string]bool // caller id → op → allowed
	keys    map[string]*key
	deleted map[string]*key
}

type key struct {
	name        string
	versions    []*keyVersion // oldest first; the last is current
	deletedDate int64
}

func (k *key) current() *keyVersion { return k.versions[len(k.versions)-1] }

func (k *key) version(v string) *keyVersion {
	if v == "" {
		return k.current()
	}
	for _, kv := range k.versions {
		if kv.id == v {
			return kv
		}
	}
	return nil
}

type keyVersion struct {
	id      string
	kty     string // "RSA", "RSA-HSM", "EC", "EC-HSM"
	size    int    // RSA bits
	crv     string // EC curve
	rsa     *rsa.PrivateKey
	ec      *ecdsa.PrivateKey
	ops     []string
	enabled bool
	nbf     int64 // unix seconds, 0 = unset
	exp     int64
	created int64
	updated int64
	tags    map[string]string
}

func (v *keyVersion) isRSA() bool { return v.rsa != nil }

// keySpec is a validated key creation request.
type keySpec struct {
	kty  string
	size int
	crv  string
	ops  []string
}

// checkKeySpec validates kty/size/crv/ops like a vault (not a managed HSM)
// does and fills in the defaults.
func checkKeySpec(kty string, size int, crv string, ops []string) (keySpec, *apiError) {
	s := keySpec{kty: kty, size: size, crv: crv}
	switch kty {
	case "RSA", "RSA-HSM":
		if s.size == 0 {
			s.size = 2048
		}
		if s.size != 2048 && s.size != 3072 && s.size != 4096 {
			return s, badParameter("The specified key size %d is not valid for key type %s. Supported sizes are 2048, 3072 and 4096.", size, kty)
		}
		if ops == nil {
			ops = rsaOps
		}
	case "EC", "EC-HSM":
		if s.crv == "" {
			switch size {
			case 0, 256:
				s.crv = "P-256"
			case 384:
				s.crv = "P-384"
			case 521:
				s.crv = "P-521"
			default:
				return s, badParameter("The specified key size %d is not valid for key type %s.", size, kty)
			}
		}
		if curve(s.crv) == nil {
			return s, badParameter("The specified curve '%s' is not supported by the emulator. Use P-256, P-384 or P-521.", s.crv)
		}
		s.size = 0
		if ops == nil {
			ops = []string{"sign", "verify"}
		}
		for _, op := range ops {
			if op != "sign" && op != "verify" {
				return s, badParameter("Key operation '%s' is not valid for key type %s.", op, kty)
			}
		}
	case "oct", "oct-HSM":
		return s, badParameter("Key type '%s' is not supported by this vault: symmetric keys are only available in Managed HSM.", kty)
	default:
		return s, badParameter("The specified key type '%s' is not valid. Supported key types are RSA, RSA-HSM, EC and EC-HSM.", kty)
	}
	for _, op := range ops {
		if !slices.Contains(rsaOps, op) && op != "import" && op != "export" {
			return s, badParameter("The key operation '%s' is not valid.", op)
		}
	}
	s.ops = slices.Clone(ops)
	return s, nil
}

func curve(crv string) elliptic.Curve {
	switch crv {
	case "P-256":
		return elliptic.P256()
	case "P-384":
		return elliptic.P384()
	case "P-521":
		return elliptic.P521()
	}
	return nil
}

// newVersion makes key material for s. Called without e.mu held: RSA key
// generation can take seconds.
func (e *Emulator) newVersion(s keySpec) (*keyVersion, error) {
	now := e.now().Unix()
	v := &keyVersion{
		id: newVersionID(), kty: s.kty, size: s.size, crv: s.crv, ops: slices.Clone(s.ops),
		enabled: true, created: now, updated: now,
	}
	switch s.kty {
	case "RSA", "RSA-HSM":
		k, err := e.rsaKey(s.size)
		if err != nil {
			return nil, fmt.Errorf("kvemu: failed to generate an RSA key: %w", err)
		}
		v.rsa = k
	default:
		k, err := ecdsa.GenerateKey(curve(s.crv), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("kvemu: failed to generate an EC key: %w", err)
		}
		v.ec = k
	}
	return v, nil
}

func generateRSA(bits int) (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, bits) }

func newVersionID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ---- in-process API (also used by the control API and the config loader) ----

// CreateVault registers a vault served at "<name>.localhost:<port>" that
// belongs to the Entra tenant entraTenantID.
func (e *Emulator) CreateVault(name, entraTenantID string, model PermissionModel) error {
	if !vaultNameRE.MatchString(name) {
		return fmt.Errorf("kvemu: invalid vault name %q: 3-24 letters, digits and single hyphens, starting with a letter", name)
	}
	if strings.EqualFold(name, controlHost) {
		return fmt.Errorf("kvemu: vault name %q is reserved for the control API", name)
	}
	if entraTenantID == "" || strings.ContainsAny(entraTenantID, `/" ,`) {
		return fmt.Errorf("kvemu: invalid Entra tenant id %q", entraTenantID)
	}
	if model != AccessPolicy && model != RBAC {
		return fmt.Errorf("kvemu: unknown permission model %d", model)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	name = strings.ToLower(name)
	if _, ok := e.vaults[name]; ok {
		return fmt.Errorf("kvemu: vault %q already exists", name)
	}
	e.vaults[name] = &vault{
		name: name, tenant: entraTenantID, model: model,
		grants: map[string]map[string]bool{}, keys: map[string]*key{}, deleted: map[string]*key{},
	}
	return nil
}

// Grant allows callerToken (a token or a caller id) the operations ops on
// vault, in addition to what it already has.
func (e *Emulator) Grant(vaultName, callerToken string, ops ...string) error {
	for _, op := range ops {
		if !slices.Contains(knownOps, op) {
			return fmt.Errorf("kvemu: unknown operation %q (known: %s)", op, strings.Join(knownOps, ", "))
		}
	}
	id := callerID(callerToken)
	if _, ok := parseToken(tokenPrefix + id); !ok {
		return fmt.Errorf("kvemu: %q is not an emulator caller token", callerToken)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	v, err := e.vaultLocked(vaultName)
	if err != nil {
		return err
	}
	g := v.grants[id]
	if g == nil {
		g = map[string]bool{}
		v.grants[id] = g
	}
	for _, op := range ops {
		g[op] = true
	}
	return nil
}

// Revoke removes all of the caller's grants on vault; its next request is denied.
func (e *Emulator) Revoke(vaultName, callerToken string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, err := e.vaultLocked(vaultName)
	if err != nil {
		return err
	}
	delete(v.grants, callerID(callerToken))
	return nil
}

// CreateKey creates a key (or a new version of an existing one) and returns
// its versioned kid. kty is "RSA", "RSA-HSM" (size 2048/3072/4096, 0 = 2048),
// "EC" or "EC-HSM" (size 256/384/521); "oct"/"oct-HSM" are refused like a
// vault refuses them. ops nil = all RSA operations (sign/verify for EC).
func (e *Emulator) CreateKey(vaultName, name string, kty string, size int, ops []string) (kid string, err error) {
	if !keyNameRE.MatchString(name) {
		return "", fmt.Errorf("kvemu: invalid key name %q", name)
	}
	s, aerr := checkKeySpec(kty, size, "", ops)
	if aerr != nil {
		return "", fmt.Errorf("kvemu: %s", aerr.Message)
	}
	kv, err := e.newVersion(s)
	if err != nil {
		return "", err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	v, err := e.vaultLocked(vaultName)
	if err != nil {
		return "", err
	}
	if aerr := v.addVersion(name, kv); aerr != nil {
		return "", fmt.Errorf("kvemu: %s", aerr.Message)
	}
	return e.kid(v.name, name, kv.id), nil
}

// addVersion makes kv the current version of key name.
func (v *vault) addVersion(name string, kv *keyVersion) *apiError {
	if _, ok := v.deleted[name]; ok {
		return deletedConflict(name)
	}
	k := v.keys[name]
	if k == nil {
		k = &key{name: name}
		v.keys[name] = k
	}
	k.versions = append(k.versions, kv)
	return nil
}

// RotateKey adds a new current version with the same type, size, key_ops
// and tags, and returns its kid. Older versions stay usable.
func (e *Emulator) RotateKey(vaultName, name string) (kid string, err error) {
	e.mu.Lock()
	v, err := e.vaultLocked(vaultName)
	var spec keySpec
	var tags map[string]string
	if err == nil {
		k := v.keys[name]
		if k == nil {
			err = fmt.Errorf("kvemu: key %q not found in vault %q", name, vaultName)
		} else {
			c := k.current()
			spec = keySpec{kty: c.kty, size: c.size, crv: c.crv, ops: c.ops}
			tags = c.tags
		}
	}
	e.mu.Unlock()
	if err != nil {
		return "", err
	}
	kv, err := e.newVersion(spec)
	if err != nil {
		return "", err
	}
	kv.tags = cloneTags(tags)
	e.mu.Lock()
	defer e.mu.Unlock()
	k := v.keys[name]
	if k == nil {
		return "", fmt.Errorf("kvemu: key %q was deleted while rotating", name)
	}
	k.versions = append(k.versions, kv)
	return e.kid(v.name, name, kv.id), nil
}

// SetTags replaces the tags of one version ("" = current), as a PATCH of
// the key version (azkeys UpdateKey) does; nil removes them all.
func (e *Emulator) SetTags(vaultName, name, version string, tags map[string]string) error {
	for k, v := range tags {
		if k == "" || len(k) > 512 || len(v) > 256 {
			return fmt.Errorf("kvemu: tag %q: names are 1-512 and values at most 256 characters", k)
		}
	}
	return e.updateVersion(vaultName, name, version, func(kv *keyVersion) { kv.tags = cloneTags(tags) })
}

// SetEnabled enables or disables one version ("" = current).
func (e *Emulator) SetEnabled(vaultName, name, version string, enabled bool) error {
	return e.updateVersion(vaultName, name, version, func(kv *keyVersion) { kv.enabled = enabled })
}

// SetKeyOps replaces the key_ops of one version ("" = current).
func (e *Emulator) SetKeyOps(vaultName, name, version string, ops []string) error {
	for _, op := range ops {
		if !slices.Contains(rsaOps, op) && op != "import" && op != "export" {
			return fmt.Errorf("kvemu: invalid key operation %q", op)
		}
	}
	return e.updateVersion(vaultName, name, version, func(kv *keyVersion) { kv.ops = slices.Clone(ops) })
}

// SetExpiry sets nbf and exp of one version ("" = current); a zero time unsets.
func (e *Emulator) SetExpiry(vaultName, name, version string, nbf, exp time.Time) error {
	return e.updateVersion(vaultName, name, version, func(kv *keyVersion) {
		kv.nbf, kv.exp = unixOrZero(nbf), unixOrZero(exp)
	})
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func (e *Emulator) updateVersion(vaultName, name, version string, f func(*keyVersion)) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, err := e.vaultLocked(vaultName)
	if err != nil {
		return err
	}
	k := v.keys[name]
	if k == nil {
		return fmt.Errorf("kvemu: key %q not found in vault %q", name, vaultName)
	}
	kv := k.version(version)
	if kv == nil {
		return fmt.Errorf("kvemu: version %q of key %q not found", version, name)
	}
	f(kv)
	kv.updated = e.now().Unix()
	return nil
}

// DeleteKey soft-deletes a key: afterwards it answers 404 KeyNotFound, and
// creating the same name answers 409 until it is purged or recovered.
func (e *Emulator) DeleteKey(vaultName, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, err := e.vaultLocked(vaultName)
	if err != nil {
		return err
	}
	if v.softDelete(name, e.now().Unix()) == nil {
		return fmt.Errorf("kvemu: key %q not found in vault %q", name, vaultName)
	}
	return nil
}

func (v *vault) softDelete(name string, now int64) *key {
	k := v.keys[name]
	if k == nil {
		return nil
	}
	delete(v.keys, name)
	k.deletedDate = now
	v.deleted[name] = k
	return k
}

func (e *Emulator) vaultLocked(name string) (*vault, error) {
	v := e.vaults[strings.ToLower(name)]
	if v == nil {
		return nil, fmt.Errorf("kvemu: vault %q does not exist", name)
	}
	return v, nil
}

// kid is the key id as the in-process API reports it (the host a client
// using [Emulator.VaultURL] sends).
func (e *Emulator) kid(vaultName, name, version string) string {
	return e.VaultURL(vaultName) + "keys/" + name + "/" + version
}

func cloneTags(t map[string]string) map[string]string {
	if t == nil {
		return nil
	}
	c := make(map[string]string, len(t))
	for k, v := range t {
		c[k] = v
	}
	return c
}

func deletedConflict(name string) *apiError {
	return errorf(http.StatusConflict, "Conflict", "ObjectIsDeletedButRecoverable",
		"Key %s is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the key can only be recovered or purged.", name)
}
