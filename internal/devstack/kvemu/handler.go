package kvemu

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"hash"
	"io"
	"maps"
	"net/http"
	"slices"
	"sort"
)

const maxBody = 1 << 20

// handle runs an authorised data-plane operation.
func (e *Emulator) handle(r *http.Request, v *vault, rt route) (int, any, *apiError) {
	base := "https://" + r.Host
	switch rt.action {
	case "get":
		e.mu.Lock()
		defer e.mu.Unlock()
		k, kv, aerr := v.lookup(rt.name, rt.version)
		if aerr != nil {
			return 0, nil, aerr
		}
		return http.StatusOK, bundle(base, k.name, kv), nil
	case "create":
		return e.handleCreate(r, v, rt, base)
	case "update":
		return e.handleUpdate(r, v, rt, base)
	case "rotate":
		return e.handleRotate(v, rt, base)
	case "delete":
		e.mu.Lock()
		defer e.mu.Unlock()
		k := v.softDelete(rt.name, e.now().Unix())
		if k == nil {
			return 0, nil, keyNotFound(rt.name)
		}
		return http.StatusOK, deletedBundle(base, k), nil
	case "getDeleted":
		e.mu.Lock()
		defer e.mu.Unlock()
		k := v.deleted[rt.name]
		if k == nil {
			return 0, nil, errorf(http.StatusNotFound, "KeyNotFound", "", "Deleted Key not found: %s", rt.name)
		}
		return http.StatusOK, deletedBundle(base, k), nil
	case "purge":
		e.mu.Lock()
		defer e.mu.Unlock()
		if v.deleted[rt.name] == nil {
			return 0, nil, errorf(http.StatusNotFound, "KeyNotFound", "", "Deleted Key not found: %s", rt.name)
		}
		delete(v.deleted, rt.name)
		return http.StatusNoContent, nil, nil
	case "recover":
		e.mu.Lock()
		defer e.mu.Unlock()
		k := v.deleted[rt.name]
		if k == nil {
			return 0, nil, errorf(http.StatusNotFound, "KeyNotFound", "", "Deleted Key not found: %s", rt.name)
		}
		delete(v.deleted, rt.name)
		k.deletedDate = 0
		v.keys[rt.name] = k
		return http.StatusOK, bundle(base, k.name, k.current()), nil
	case "listKeys", "listVersions", "listDeleted":
		return e.handleList(v, rt, base)
	case "crypto":
		return e.handleCrypto(r, v, rt, base)
	}
	panic("kvemu: internal error: unrouted action " + rt.action)
}

// lookup finds a live key version; version "" = current.
func (v *vault) lookup(name, version string) (*key, *keyVersion, *apiError) {
	k := v.keys[name]
	if k == nil {
		return nil, nil, keyNotFound(name)
	}
	kv := k.version(version)
	if kv == nil {
		return nil, nil, keyNotFound(name + "/" + version)
	}
	return k, kv, nil
}

func bundle(base, name string, kv *keyVersion) keyBundle {
	return keyBundle{
		Key:        kv.jwk(base + "/keys/" + name + "/" + kv.id),
		Attributes: kv.attributes(),
		Tags:       cloneTags(kv.tags),
	}
}

func deletedBundle(base string, k *key) keyBundle {
	b := bundle(base, k.name, k.current())
	b.RecoveryID = base + "/deletedkeys/" + k.name
	b.DeletedDate = k.deletedDate
	b.ScheduledPurgeDate = k.deletedDate + recoverableDays*24*3600
	return b
}

func decodeBody(r *http.Request, v any) *apiError {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return badParameter("The request body could not be read.")
	}
	if len(b) > maxBody {
		return badParameter("The request body is too large.")
	}
	if len(b) == 0 {
		return badParameter("The request body is missing.")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return badParameter("The request body is not valid JSON for this operation.")
	}
	return nil
}

func (e *Emulator) handleCreate(r *http.Request, v *vault, rt route, base string) (int, any, *apiError) {
	var p createParams
	if aerr := decodeBody(r, &p); aerr != nil {
		return 0, nil, aerr
	}
	if p.Kty == "" {
		return 0, nil, badParameter("The parameter kty is required.")
	}
	if p.PublicExponent != 0 && p.PublicExponent != 65537 {
		return 0, nil, badParameter("The emulator only supports the public exponent 65537.")
	}
	s, aerr := checkKeySpec(p.Kty, p.KeySize, p.Crv, p.KeyOps)
	if aerr != nil {
		return 0, nil, aerr
	}
	// Refuse a soft-deleted name before paying for key generation.
	e.mu.Lock()
	_, deleted := v.deleted[rt.name]
	e.mu.Unlock()
	if deleted {
		return 0, nil, deletedConflict(rt.name)
	}
	kv, err := e.newVersion(s)
	if err != nil {
		return 0, nil, errorf(http.StatusInternalServerError, "InternalServerError", "", "Key generation failed.")
	}
	kv.tags = cloneTags(p.Tags)
	if a := p.Attributes; a != nil {
		if a.Enabled != nil {
			kv.enabled = *a.Enabled
		}
		if a.NotBefore != nil {
			kv.nbf = *a.NotBefore
		}
		if a.Expires != nil {
			kv.exp = *a.Expires
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if aerr := v.addVersion(rt.name, kv); aerr != nil {
		return 0, nil, aerr
	}
	return http.StatusOK, bundle(base, rt.name, kv), nil
}

func (e *Emulator) handleUpdate(r *http.Request, v *vault, rt route, base string) (int, any, *apiError) {
	var p updateParams
	if aerr := decodeBody(r, &p); aerr != nil {
		return 0, nil, aerr
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_, kv, aerr := v.lookup(rt.name, rt.version)
	if aerr != nil {
		return 0, nil, aerr
	}
	if p.KeyOps != nil {
		if _, aerr := checkKeySpec(kv.kty, kv.size, kv.crv, p.KeyOps); aerr != nil {
			return 0, nil, aerr
		}
		kv.ops = slices.Clone(p.KeyOps)
	}
	if a := p.Attributes; a != nil {
		if a.Enabled != nil {
			kv.enabled = *a.Enabled
		}
		if a.NotBefore != nil {
			kv.nbf = *a.NotBefore
		}
		if a.Expires != nil {
			kv.exp = *a.Expires
		}
	}
	if p.Tags != nil {
		kv.tags = cloneTags(p.Tags)
	}
	kv.updated = e.now().Unix()
	return http.StatusOK, bundle(base, rt.name, kv), nil
}

func (e *Emulator) handleRotate(v *vault, rt route, base string) (int, any, *apiError) {
	e.mu.Lock()
	k := v.keys[rt.name]
	var s keySpec
	var tags map[string]string
	if k != nil {
		c := k.current()
		s, tags = keySpec{kty: c.kty, size: c.size, crv: c.crv, ops: c.ops}, c.tags
	}
	e.mu.Unlock()
	if k == nil {
		return 0, nil, keyNotFound(rt.name)
	}
	kv, err := e.newVersion(s)
	if err != nil {
		return 0, nil, errorf(http.StatusInternalServerError, "InternalServerError", "", "Key generation failed.")
	}
	kv.tags = cloneTags(tags)
	e.mu.Lock()
	defer e.mu.Unlock()
	if v.keys[rt.name] != k {
		return 0, nil, keyNotFound(rt.name)
	}
	k.versions = append(k.versions, kv)
	return http.StatusOK, bundle(base, rt.name, kv), nil
}

func (e *Emulator) handleList(v *vault, rt route, base string) (int, any, *apiError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	res := listResult{Value: []keyItem{}}
	switch rt.action {
	case "listKeys":
		for _, name := range slices.Sorted(maps.Keys(v.keys)) {
			c := v.keys[name].current()
			res.Value = append(res.Value, keyItem{Kid: base + "/keys/" + name, Attributes: c.attributes(), Tags: cloneTags(c.tags)})
		}
	case "listDeleted":
		for _, name := range slices.Sorted(maps.Keys(v.deleted)) {
			k := v.deleted[name]
			c := k.current()
			res.Value = append(res.Value, keyItem{
				Kid: base + "/keys/" + name, Attributes: c.attributes(), Tags: cloneTags(c.tags),
				RecoveryID: base + "/deletedkeys/" + name, DeletedDate: k.deletedDate,
				ScheduledPurgeDate: k.deletedDate + recoverableDays*24*3600,
			})
		}
	case "listVersions":
		k := v.keys[rt.name]
		if k == nil {
			return 0, nil, keyNotFound(rt.name)
		}
		for _, kv := range k.versions {
			res.Value = append(res.Value, keyItem{Kid: base + "/keys/" + rt.name + "/" + kv.id, Attributes: kv.attributes(), Tags: cloneTags(kv.tags)})
		}
		// The service lists versions in no particular order; sort by id for stable output.
		sort.Slice(res.Value, func(i, j int) bool { return res.Value[i].Kid < res.Value[j].Kid })
	}
	return http.StatusOK, res, nil
}

// handleCrypto runs wrapKey/unwrapKey/encrypt/decrypt. The checks run in
// the order: key exists, enabled, nbf/exp (not for unwrap/decrypt/verify),
// key_ops, algorithm, value.
func (e *Emulator) handleCrypto(r *http.Request, v *vault, rt route, base string) (int, any, *apiError) {
	var p opParams
	if aerr := decodeBody(r, &p); aerr != nil {
		return 0, nil, aerr
	}
	e.mu.Lock()
	_, kv, aerr := v.lookup(rt.name, rt.version)
	if aerr == nil {
		aerr = checkUsable(kv, rt.crypto, e.now().Unix())
	}
	var priv *rsa.PrivateKey
	var kvID string
	if aerr == nil {
		priv, kvID = kv.rsa, kv.id
		if !kv.isRSA() {
			aerr = badParameter("Algorithm %s is not supported for key type %s.", p.Alg, kv.kty)
		}
	}
	e.mu.Unlock()
	if aerr != nil {
		return 0, nil, aerr
	}
	if rt.crypto == "sign" || rt.crypto == "verify" {
		return 0, nil, badParameter("The emulator does not implement %s.", rt.crypto)
	}
	in, ok := decodeB64(p.Value)
	if !ok || p.Value == "" {
		return 0, nil, badParameter("The parameter value must be non-empty base64url.")
	}
	var out []byte
	var err error
	switch rt.crypto {
	case "wrapKey", "encrypt":
		out, err = rsaEncrypt(p.Alg, &priv.PublicKey, in)
	case "unwrapKey", "decrypt":
		out, err = rsaDecrypt(p.Alg, priv, in)
	}
	if errors.Is(err, errBadAlg) {
		return 0, nil, badParameter("The specified algorithm '%s' is not valid for key type RSA. Use RSA-OAEP-256, RSA-OAEP or RSA1_5.", p.Alg)
	}
	if err != nil {
		return 0, nil, badParameter("The value could not be processed with algorithm %s: it is not valid for this key.", p.Alg)
	}
	return http.StatusOK, opResult{Kid: base + "/keys/" + rt.name + "/" + kvID, Value: b64.EncodeToString(out)}, nil
}

// checkUsable applies enabled, nbf/exp and key_ops to a crypto operation.
func checkUsable(kv *keyVersion, op string, now int64) *apiError {
	if !kv.enabled {
		return errorf(http.StatusForbidden, "Forbidden", "KeyDisabled", "Operation %s is not allowed on a disabled key.", op)
	}
	// Outside nbf/exp only decrypt, unwrap and verify still work (Key Vault docs, key attributes).
	if op != "unwrapKey" && op != "decrypt" && op != "verify" {
		if kv.exp != 0 && now >= kv.exp {
			return errorf(http.StatusForbidden, "Forbidden", "KeyExpired", "Operation %s is not allowed on an expired key.", op)
		}
		if kv.nbf != 0 && now < kv.nbf {
			return errorf(http.StatusForbidden, "Forbidden", "KeyNotYetValid", "Operation %s is not allowed on a key that is not yet valid.", op)
		}
	}
	if !slices.Contains(kv.ops, op) {
		return errorf(http.StatusForbidden, "Forbidden", "KeyOperationForbidden", "Operation %s is not permitted on this key.", op)
	}
	return nil
}

var errBadAlg = errors.New("unsupported algorithm")

func oaepHash(alg string) (hash.Hash, bool) {
	switch alg {
	case "RSA-OAEP-256":
		return sha256.New(), true
	case "RSA-OAEP":
		return sha1.New(), true
	}
	return nil, false
}

func rsaEncrypt(alg string, pub *rsa.PublicKey, pt []byte) ([]byte, error) {
	if h, ok := oaepHash(alg); ok {
		return rsa.EncryptOAEP(h, rand.Reader, pub, pt, nil)
	}
	if alg == "RSA1_5" {
		// Key Vault still offers RSA1_5 (not recommended), so the emulator
		// must; the service itself only ever uses RSA-OAEP-256.
		//lint:ignore SA1019 emulating Key Vault's RSA1_5
		return rsa.EncryptPKCS1v15(rand.Reader, pub, pt)
	}
	return nil, errBadAlg
}

func rsaDecrypt(alg string, priv *rsa.PrivateKey, ct []byte) ([]byte, error) {
	if h, ok := oaepHash(alg); ok {
		return rsa.DecryptOAEP(h, nil, priv, ct, nil)
	}
	if alg == "RSA1_5" {
		//lint:ignore SA1019 emulating Key Vault's RSA1_5
		return priv.Decrypt(nil, ct, &rsa.PKCS1v15DecryptOptions{})
	}
	return nil, errBadAlg
}
