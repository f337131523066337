package kvemu

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Config declares vaults, keys and grants to set up at start (the
// standalone command's -config file). JSON:
//
//	{"vaults": [{
//	   "name": "contoso-kv",
//	   "tenantId": "11111111-1111-1111-1111-111111111111",
//	   "permissionModel": "rbac",                       // or "accessPolicy" (default)
//	   "keys":   [{"name": "twinit-backup", "kty": "RSA", "size": 2048,
//	               "ops": ["wrapKey", "unwrapKey"]}],     // ops omitted = all RSA ops
//	   "grants": [{"caller": "emulator.<applicationId>.<tenantId>",
//	               "ops": ["get", "wrapKey", "unwrapKey"]},
//	              {"caller": "emulator.platform", "ops": ["get", "wrapKey", "unwrapKey"]}]
//	}]}
type Config struct {
	Vaults []VaultConfig `json:"vaults"`
}

// VaultConfig is one vault of a [Config].
type VaultConfig struct {
	Name            string        `json:"name"`
	TenantID        string        `json:"tenantId"`
	PermissionModel string        `json:"permissionModel"`
	Keys            []KeyConfig   `json:"keys"`
	Grants          []GrantConfig `json:"grants"`
}

// KeyConfig is one key of a [VaultConfig].
type KeyConfig struct {
	Name string   `json:"name"`
	Kty  string   `json:"kty"`  // "RSA" (default), "RSA-HSM", "EC", "EC-HSM"
	Size int      `json:"size"` // RSA 2048 (default)/3072/4096; EC 256/384/521
	Ops  []string `json:"ops"`
	// Tags of the key's first version, e.g. {"twinit-tenants": "acme"}.
	Tags map[string]string `json:"tags"`
}

// GrantConfig is one caller's grant in a [VaultConfig].
type GrantConfig struct {
	Caller string   `json:"caller"` // a token ("emulator.platform") or caller id ("platform")
	Ops    []string `json:"ops"`
}

// ParseConfig reads a JSON [Config], refusing unknown fields so that a typo
// does not silently leave a vault unconfigured.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("kvemu: invalid config: %w", err)
	}
	return c, nil
}

// Apply creates the config's vaults, keys and grants.
func (e *Emulator) Apply(c Config) error {
	for _, v := range c.Vaults {
		m, err := ParsePermissionModel(v.PermissionModel)
		if err != nil {
			return err
		}
		if err := e.CreateVault(v.Name, v.TenantID, m); err != nil {
			return err
		}
		for _, k := range v.Keys {
			kty := k.Kty
			if kty == "" {
				kty = "RSA"
			}
			if _, err := e.CreateKey(v.Name, k.Name, kty, k.Size, k.Ops); err != nil {
				return fmt.Errorf("vault %s: %w", v.Name, err)
			}
			if k.Tags != nil {
				if err := e.SetTags(v.Name, k.Name, "", k.Tags); err != nil {
					return fmt.Errorf("vault %s: %w", v.Name, err)
				}
			}
		}
		for _, g := range v.Grants {
			if err := e.Grant(v.Name, g.Caller, g.Ops...); err != nil {
				return fmt.Errorf("vault %s: %w", v.Name, err)
			}
		}
	}
	return nil
}
