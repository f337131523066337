package keywrap

import (
	"errors"
	"net/url"
	"strings"

	"github.com/twinit/byok-backup/internal/errcode"
)

// ErrInvalidKeyID is the cause of every error returned by [ParseKeyID] and
// [CheckKeyID]; callers that read key ids from stored data branch on it with
// errors.Is.
var ErrInvalidKeyID = errors.New("keywrap: invalid key id")

// ErrInvalidTemplate is the cause when KEYVAULT_URL_TEMPLATE itself is
// unusable: a configuration error, never the customer's.
var ErrInvalidTemplate = errors.New("keywrap: invalid KEYVAULT_URL_TEMPLATE")

// VaultPlaceholder is the part of KEYVAULT_URL_TEMPLATE replaced by the vault name.
const VaultPlaceholder = "{vault}"

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isHex(c byte) bool    { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// ValidVaultName reports whether s is a Key Vault name: 3–24 characters,
// letters, digits and single hyphens, starting with a letter and ending with
// a letter or digit.
func ValidVaultName(s string) bool {
	if len(s) < 3 || len(s) > 24 || !isLetter(s[0]) || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isLetter(c), isDigit(c):
		case c == '-' && s[i-1] != '-':
		default:
			return false
		}
	}
	return true
}

// ValidKeyName reports whether s is a key name: 1–127 letters, digits and hyphens.
func ValidKeyName(s string) bool {
	if len(s) < 1 || len(s) > 127 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isLetter(c) && !isDigit(c) && c != '-' {
			return false
		}
	}
	return true
}

// ValidKeyVersion reports whether s is a key version: 32 hex digits.
func ValidKeyVersion(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

// ValidTenantID reports whether s is an Entra tenant id: a GUID written
// 8-4-4-4-12 hex digits (no braces).
func ValidTenantID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHex(s[i]) {
				return false
			}
		}
	}
	return true
}

// VaultURL builds the vault URL for a customer's vault from the template
// (KEYVAULT_URL_TEMPLATE) and the vault name. It is the only way user input
// becomes a URL: the name is validated first, the placeholder must sit in the
// host, and the result must be a plain https origin ("https://host[:port]/").
func VaultURL(template, vaultName string) (string, error) {
	if !ValidVaultName(vaultName) {
		return "", errcode.New(errcode.InvalidRequest,
			"%q is not a Key Vault name: use 3 to 24 letters, digits and single hyphens, starting with a letter and ending with a letter or digit.", vaultName)
	}
	if strings.Count(template, VaultPlaceholder) != 1 {
		return "", errcode.Wrap(ErrInvalidTemplate, errcode.Internal,
			"KEYVAULT_URL_TEMPLATE must contain %s exactly once: fix the app setting.", VaultPlaceholder)
	}
	u, err := originURL(strings.Replace(template, VaultPlaceholder, vaultName, 1))
	if err != nil {
		return "", errcode.Wrap(errors.Join(ErrInvalidTemplate, err), errcode.Internal,
			"KEYVAULT_URL_TEMPLATE is not an https URL with %s in its host name: fix the app setting.", VaultPlaceholder)
	}
	// The name must have landed in the host, so that two vault names can
	// never map to the same host nor the name choose a path.
	if !strings.Contains(strings.ToLower(u.Hostname()), strings.ToLower(vaultName)) {
		return "", errcode.Wrap(ErrInvalidTemplate, errcode.Internal,
			"KEYVAULT_URL_TEMPLATE must put %s in the host name: fix the app setting.", VaultPlaceholder)
	}
	return u.String(), nil
}

// originURL parses s and accepts only "https://host[:port][/]" with nothing
// else, returning it normalised to a lower-case host and a trailing slash.
func originURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" ||
		u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.Hostname() == "" {
		return nil, errors.New("not an https origin")
	}
	return &url.URL{Scheme: "https", Host: strings.ToLower(u.Host), Path: "/"}, nil
}

// ParseKeyID splits a Key Vault key id "https://host[:port]/keys/<name>[/<version>]"
// into its vault URL ("https://host[:port]/", host lower-cased), key name and
// version ("" when versionless). Key ids come from settings and from stored
// backups, so anything else (another path, query, user info, a bad name or
// version) is refused with [ErrInvalidKeyID].
func ParseKeyID(keyID string) (vaultURL, keyName, version string, err error) {
	bad := func(why string) error {
		return errcode.Wrap(ErrInvalidKeyID, errcode.InvalidRequest,
			"The key id %q is not a Key Vault key id (%s): use https://<vault-host>/keys/<name>[/<version>].", truncate(keyID, 200), why)
	}
	u, perr := url.Parse(keyID)
	if perr != nil {
		return "", "", "", bad("not a URL")
	}
	if u.Scheme != "https" || u.Host == "" || u.Hostname() == "" || u.User != nil || u.RawQuery != "" ||
		u.Fragment != "" || u.Opaque != "" || u.ForceQuery {
		return "", "", "", bad("not an https URL without query")
	}
	// RawPath is set when the path had escapes; a key id never has any.
	if u.RawPath != "" || strings.Contains(keyID, "%") {
		return "", "", "", bad("escaped characters")
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if len(parts) > 0 && parts[len(parts)-1] == "" && len(parts) == 3 {
		parts = parts[:2] // "/keys/name/" is the versionless form too
	}
	if len(parts) < 2 || len(parts) > 3 || parts[0] != "keys" {
		return "", "", "", bad("path is not /keys/<name>[/<version>]")
	}
	if !ValidKeyName(parts[1]) {
		return "", "", "", bad("bad key name")
	}
	if len(parts) == 3 {
		if !ValidKeyVersion(parts[2]) {
			return "", "", "", bad("bad key version")
		}
		version = parts[2]
	}
	return "https://" + strings.ToLower(u.Host) + "/", parts[1], version, nil
}

// CheckKeyID verifies that keyID (typically read back from a stored backup)
// names a key in exactly the vault that template and vaultName build, so a
// tampered key id can't send a restore, and the customer's credential, to
// another host. It returns the key name and version.
func CheckKeyID(template, vaultName, keyID string) (keyName, version string, err error) {
	want, err := VaultURL(template, vaultName)
	if err != nil {
		return "", "", err
	}
	got, name, ver, err := ParseKeyID(keyID)
	if err != nil {
		return "", "", err
	}
	if got != want {
		return "", "", errcode.Wrap(ErrInvalidKeyID, errcode.InvalidRequest,
			"The key id does not belong to vault %s: the stored key reference was changed; restore is refused.", vaultName)
	}
	return name, ver, nil
}

// VaultName returns the first DNS label of a vault URL's host ("contoso-kv"
// for "https://contoso-kv.vault.azure.net/"), for messages.
func VaultName(vaultURL string) string {
	u, err := url.Parse(vaultURL)
	if err != nil || u.Hostname() == "" {
		return vaultURL
	}
	h := u.Hostname()
	if i := strings.IndexByte(h, '.'); i > 0 {
		return h[:i]
	}
	return h
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
