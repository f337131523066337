package byok

import (
	"strings"
	"testing"

	"github.com/twinit/byok-backup/internal/errcode"
)

const (
	goodVault   = "contoso-kv"
	goodKey     = "twinit-backup"
	goodTenant  = "18a5c4b2-84a8-4acb-8db8-fc7073207415"
	goodVersion = "0123456789abcdef0123456789ABCDEF"
)

func TestSettingsCheck(t *testing.T) {
	good := Settings{KeyVaultName: goodVault, KeyName: goodKey, TenantID: goodTenant}
	if err := good.Check(); err != nil {
		t.Fatalf("good settings: %v", err)
	}
	pinned := good
	pinned.KeyVersion = goodVersion
	if err := pinned.Check(); err != nil {
		t.Fatalf("pinned settings: %v", err)
	}
	bad := map[string]func(*Settings){
		"keyVaultName=short":        func(s *Settings) { s.KeyVaultName = "kv" },
		"keyVaultName=long":         func(s *Settings) { s.KeyVaultName = strings.Repeat("a", 25) },
		"keyVaultName=digitFirst":   func(s *Settings) { s.KeyVaultName = "1kv-name" },
		"keyVaultName=doubleHyphen": func(s *Settings) { s.KeyVaultName = "my--kv" },
		"keyVaultName=hyphenLast":   func(s *Settings) { s.KeyVaultName = "mykv-" },
		"keyVaultName=dot":          func(s *Settings) { s.KeyVaultName = "evil.com" },
		"keyVaultName=urlish":       func(s *Settings) { s.KeyVaultName = "a/../b" },
		"keyName=empty":             func(s *Settings) { s.KeyName = "" },
		"keyName=long":              func(s *Settings) { s.KeyName = strings.Repeat("k", 128) },
		"keyName=underscore":        func(s *Settings) { s.KeyName = "my_key" },
		"keyName=slash":             func(s *Settings) { s.KeyName = "k/v" },
		"tenantId=empty":            func(s *Settings) { s.TenantID = "" },
		"tenantId=braces":           func(s *Settings) { s.TenantID = "{" + goodTenant + "}" },
		"tenantId=notHex":           func(s *Settings) { s.TenantID = "18a5c4b2-84a8-4acb-8db8-fc707320741z" },
		"keyVersion=short":          func(s *Settings) { s.KeyVersion = "0123" },
		"keyVersion=notHex":         func(s *Settings) { s.KeyVersion = strings.Repeat("g", 32) },
		"keyVersion=withPath":       func(s *Settings) { s.KeyVersion = "0123456789abcdef/123456789abcdef" },
	}
	for name, mutate := range bad {
		t.Run(name, func(t *testing.T) {
			s := good
			mutate(&s)
			err := s.Check()
			if errcode.CodeOf(err) != errcode.InvalidRequest {
				t.Fatalf("Check() = %v, want InvalidRequest", err)
			}
			field, _, _ := strings.Cut(name, "=")
			if _, msg := errcode.Public(err); !strings.HasPrefix(msg, field+" ") {
				t.Fatalf("message %q does not name the field %s", msg, field)
			}
		})
	}
}

func TestCheckTenant(t *testing.T) {
	for _, ok := range []string{"a", "acme", "acme-sandbox", "0", strings.Repeat("a", 63)} {
		if err := checkTenant(ok); err != nil {
			t.Errorf("checkTenant(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", "a-", "Acme", "a_b", strings.Repeat("a", 64), "a/b"} {
		if errcode.CodeOf(checkTenant(bad)) != errcode.InvalidRequest {
			t.Errorf("checkTenant(%q) accepted", bad)
		}
	}
}

func TestPrecondition(t *testing.T) {
	absent := Record{Tenant: "acme"}
	stored := Record{Tenant: "acme", Version: 3, RowETag: "W/\"x\""}
	for _, tc := range []struct {
		ifMatch string
		rec     Record
		ok      bool
	}{
		{"", absent, true}, {"", stored, true},
		{`"0"`, absent, true}, {`"0"`, stored, false},
		{`"3"`, stored, true}, {`W/"3"`, stored, true}, {`"2", "3"`, stored, true}, {`"2"`, stored, false},
		{"*", stored, true}, {"*", absent, false}, {"3", stored, false},
	} {
		err := precondition(tc.ifMatch, tc.rec)
		if (err == nil) != tc.ok {
			t.Errorf("precondition(%q, version %d stored=%v) = %v, want ok=%v", tc.ifMatch, tc.rec.Version, tc.rec.stored(), err, tc.ok)
		}
		if err != nil && errcode.CodeOf(err) != errcode.Conflict {
			t.Errorf("precondition(%q) code = %s, want Conflict", tc.ifMatch, errcode.CodeOf(err))
		}
	}
}
