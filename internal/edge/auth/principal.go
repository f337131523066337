package auth

import "slices"

// Permission is what an API route requires (API.md §2).
type Permission int

const (
	// PermRead: GET on byok, backups and restores.
	PermRead Permission = iota + 1
	// PermAdmin: PUT/DELETE byok and POST byok/validate.
	PermAdmin
	// PermOperate: POST backups and restores.
	PermOperate
)

func (p Permission) String() string {
	switch p {
	case PermRead:
		return "read"
	case PermAdmin:
		return "admin"
	case PermOperate:
		return "operate"
	}
	return "unknown"
}

// Roles of API.md §2.
const (
	RoleRead             = "byok.read"
	RoleAdmin            = "byok.admin"
	RoleBackupOperator   = "backup.operator"
	RolePlatformOperator = "platform.operator"
)

// grants is what each tenant-scoped role allows; admin and operator imply read.
var grants = map[string][]Permission{
	RoleRead:           {PermRead},
	RoleAdmin:          {PermRead, PermAdmin},
	RoleBackupOperator: {PermRead, PermOperate},
}

// Principal is an authenticated caller.
type Principal struct {
	Subject string
	// Tenant is the tenant claim; "" only for a platform operator whose
	// token has none.
	Tenant string
	Roles  []string
}

// Can reports whether p may act with perm on tenant. platform.operator may
// do everything on every tenant, whatever its tenant claim says; every
// other role applies only to the tenant in the token.
func (p Principal) Can(tenant string, perm Permission) bool {
	if slices.Contains(p.Roles, RolePlatformOperator) {
		return true
	}
	if tenant == "" || p.Tenant != tenant {
		return false
	}
	for _, r := range p.Roles {
		if slices.Contains(grants[r], perm) {
			return true
		}
	}
	return false
}

// IsPlatformOperator reports whether p holds platform.operator.
func (p Principal) IsPlatformOperator() bool { return slices.Contains(p.Roles, RolePlatformOperator) }
