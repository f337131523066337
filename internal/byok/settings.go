package byok

import (
	"regexp"
	"strconv"

	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// Check validates every field by API.md's rules; the first bad field
// is reported as InvalidRequest.
func (s Settings) Check() error {
	switch {
	case !keywrap.ValidVaultName(s.KeyVaultName):
		return errcode.New(errcode.InvalidRequest,
			"keyVaultName %s is not a Key Vault name: use 3 to 24 letters, digits and single hyphens, starting with a letter and ending with a letter or digit.", quoteShort(s.KeyVaultName))
	case !keywrap.ValidKeyName(s.KeyName):
		return errcode.New(errcode.InvalidRequest,
			"keyName %s is not a key name: use 1 to 127 letters, digits and hyphens.", quoteShort(s.KeyName))
	case !keywrap.ValidTenantID(s.TenantID):
		return errcode.New(errcode.InvalidRequest,
			"tenantId %s is not an Entra tenant id: use the directory (tenant) GUID, like 18a5c4b2-84a8-4acb-8db8-fc7073207415.", quoteShort(s.TenantID))
	case s.KeyVersion != "" && !keywrap.ValidKeyVersion(s.KeyVersion):
		return errcode.New(errcode.InvalidRequest,
			"keyVersion %s is not a key version: use the 32 hex digits at the end of the key id, or omit it to follow the current version.", quoteShort(s.KeyVersion))
	}
	return nil
}

// tenantPattern is API.md's tenant id syntax (§3).
var tenantPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func checkTenant(tenant string) error {
	if !tenantPattern.MatchString(tenant) {
		return errcode.New(errcode.InvalidRequest,
			"%s is not a tenant id: use 1 to 63 lower-case letters, digits and hyphens, not starting or ending with a hyphen.", quoteShort(tenant))
	}
	return nil
}

// quoteShort quotes user input for a message, cut to a readable length.
func quoteShort(s string) string {
	const max = 64
	if len(s) > max {
		s = s[:max] + "…"
	}
	return strconv.Quote(s)
}
