package kvemu

import (
	"encoding/base64"
	"math/big"
	"slices"
	"strings"
)

// Wire models, field names as in the keys REST API (docs/research/keyvault.md §1.2).

type jsonWebKey struct {
	Kid    string   `json:"kid"`
	Kty    string   `json:"kty"`
	KeyOps []string `json:"key_ops"`
	N      string   `json:"n,omitempty"`
	E      string   `json:"e,omitempty"`
	Crv    string   `json:"crv,omitempty"`
	X      string   `json:"x,omitempty"`
	Y      string   `json:"y,omitempty"`
}

type keyAttributes struct {
	Enabled         *bool  `json:"enabled,omitempty"`
	NotBefore       *int64 `json:"nbf,omitempty"`
	Expires         *int64 `json:"exp,omitempty"`
	Created         int64  `json:"created,omitempty"`
	Updated         int64  `json:"updated,omitempty"`
	RecoverableDays int    `json:"recoverableDays,omitempty"`
	RecoveryLevel   string `json:"recoveryLevel,omitempty"`
	Exportable      *bool  `json:"exportable,omitempty"`
}

type keyBundle struct {
	Key        jsonWebKey        `json:"key"`
	Attributes keyAttributes     `json:"attributes"`
	Tags       map[string]string `json:"tags,omitempty"`
	// Deleted key bundle fields.
	RecoveryID         string `json:"recoveryId,omitempty"`
	DeletedDate        int64  `json:"deletedDate,omitempty"`
	ScheduledPurgeDate int64  `json:"scheduledPurgeDate,omitempty"`
}

type keyItem struct {
	Kid        string            `json:"kid"`
	Attributes keyAttributes     `json:"attributes"`
	Tags       map[string]string `json:"tags,omitempty"`
	// Deleted key item fields.
	RecoveryID         string `json:"recoveryId,omitempty"`
	DeletedDate        int64  `json:"deletedDate,omitempty"`
	ScheduledPurgeDate int64  `json:"scheduledPurgeDate,omitempty"`
}

type listResult struct {
	Value    []keyItem `json:"value"`
	NextLink *string   `json:"nextLink"`
}

type createParams struct {
	Kty            string            `json:"kty"`
	KeySize        int               `json:"key_size"`
	PublicExponent int               `json:"public_exponent"`
	KeyOps         []string          `json:"key_ops"`
	Attributes     *keyAttributes    `json:"attributes"`
	Tags           map[string]string `json:"tags"`
	Crv            string            `json:"crv"`
}

type updateParams struct {
	KeyOps     []string          `json:"key_ops"`
	Attributes *keyAttributes    `json:"attributes"`
	Tags       map[string]string `json:"tags"`
}

type opParams struct {
	Alg   string `json:"alg"`
	Value string `json:"value"`
}

type opResult struct {
	Kid   string `json:"kid"`
	Value string `json:"value"`
}

const (
	recoverableDays = 90
	recoveryLevel   = "Recoverable+Purgeable"
)

var b64 = base64.RawURLEncoding

// decodeB64 accepts base64url with or without padding.
func decodeB64(s string) ([]byte, bool) {
	b, err := b64.DecodeString(strings.TrimRight(s, "="))
	return b, err == nil
}

func (v *keyVersion) attributes() keyAttributes {
	a := keyAttributes{
		Enabled: new(v.enabled), Created: v.created, Updated: v.updated,
		RecoverableDays: recoverableDays, RecoveryLevel: recoveryLevel, Exportable: new(false),
	}
	if v.nbf != 0 {
		a.NotBefore = new(v.nbf)
	}
	if v.exp != 0 {
		a.Expires = new(v.exp)
	}
	return a
}

func (v *keyVersion) jwk(kid string) jsonWebKey {
	k := jsonWebKey{Kid: kid, Kty: v.kty, KeyOps: slices.Clone(v.ops)}
	if k.KeyOps == nil {
		k.KeyOps = []string{}
	}
	if v.rsa != nil {
		k.N = b64.EncodeToString(v.rsa.N.Bytes())
		k.E = b64.EncodeToString(big.NewInt(int64(v.rsa.E)).Bytes())
	}
	if v.ec != nil {
		k.Crv = v.crv
		size := (v.ec.Curve.Params().BitSize + 7) / 8
		pub, _ := v.ec.PublicKey.Bytes() // uncompressed point: 0x04 || X || Y
		k.X = b64.EncodeToString(pub[1 : 1+size])
		k.Y = b64.EncodeToString(pub[1+size:])
	}
	return k
}
