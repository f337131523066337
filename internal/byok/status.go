package byok

import (
	"time"
)

// Status is the status document of GET/PUT/DELETE /api/tenants/{tenant}/byok
// (API.md §2). Key fields are empty while BYOK is disabled.
type Status struct {
	Tenant                string     `json:"tenant"`
	State                 State      `json:"state"`
	KeyVaultName          string     `json:"keyVaultName"`
	KeyName               string     `json:"keyName"`
	TenantID              string     `json:"tenantId"`
	KeyVersion            string     `json:"keyVersion,omitempty"` // only when pinned
	KeyID                 string     `json:"keyId"`
	KeyType               string     `json:"keyType"`
	KeySize               int        `json:"keySize"`
	FallbackToPlatformKey bool       `json:"fallbackToPlatformKey"`
	ApplicationID         string     `json:"applicationId"`
	EnabledAt             *time.Time `json:"enabledAt"`
	LastCheck             *LastCheck `json:"lastCheck"`
	DegradedSince         *time.Time `json:"degradedSince"`
	// Ownership is the tag the key's owner must set (API.md §5), shown
	// whether or not BYOK is enabled; null when the check is turned off.
	Ownership *Ownership `json:"ownership"`
	// Backups counts the completed backups by what wraps them (contract
	// §7); absent when the service counts none.
	Backups *BackupCounts `json:"backups,omitempty"`

	// ETag is the admin version clients send back in If-Match.
	ETag string `json:"-"`
}

// Ownership is the status document's ownership.
type Ownership struct {
	TagName  string `json:"tagName"`
	TagValue string `json:"tagValue"`
}

// LastCheck is the status document's lastCheck.
type LastCheck struct {
	At      time.Time `json:"at"`
	OK      bool      `json:"ok"`
	Code    string    `json:"code"`
	Message string    `json:"message"`
}

func (s *Service) status(r Record) Status {
	st := Status{Tenant: r.Tenant, State: r.State(), ApplicationID: s.appID, ETag: ETag(r.Version), FallbackToPlatformKey: true}
	if s.tag != "" {
		st.Ownership = &Ownership{TagName: s.tag, TagValue: r.Tenant}
	}
	if !r.Enabled {
		return st
	}
	st.KeyVaultName, st.KeyName, st.TenantID, st.KeyVersion = r.KeyVaultName, r.KeyName, r.TenantID, r.KeyVersion
	st.KeyID, st.KeyType, st.KeySize = r.KeyID, r.KeyType, r.KeySize
	st.FallbackToPlatformKey = r.FallbackToPlatformKey
	st.EnabledAt = timePtr(r.EnabledAt)
	st.DegradedSince = timePtr(r.DegradedSince)
	if c := r.LastCheck; c != nil {
		st.LastCheck = &LastCheck{At: c.At.UTC(), OK: c.OK, Code: c.Code, Message: c.Message}
	}
	return st
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
