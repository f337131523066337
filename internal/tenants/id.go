package tenants

import "regexp"

// idPattern is API.md §3's tenant id rule: lowercase letters, digits and
// hyphens, 1–63 characters, no leading or trailing hyphen (a DNS label).
var idPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidID reports whether s is a valid tenant id. Every tenant id from a
// route, a token claim, a queue message or the Tenants table is checked with
// it before it reaches storage.
func ValidID(s string) bool { return idPattern.MatchString(s) }
