package config

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/keywrap"
)

// Load parses each value once: the wiring takes the parsed schedule,
// platform key reference, CA certificates and spool limit from Config and
// parses or reads nothing again.
func TestLoadParsesOnce(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := selfSignedPEM(t)
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	env := validEnv()
	env["KEYVAULT_CA_FILE"] = ca
	env["BACKUP_SCHEDULE"] = "0 30 3 * * *"
	env["PLATFORM_KEY_ID"] = "https://platform-kv.localhost:8443/keys/platform-backup/0123456789abcdef0123456789abcdef"
	env["RESTORE_SPOOL_LIMIT_MB"] = "64"
	c, err := Load(getenv(env))
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if c.BackupCron == nil || c.BackupCron.Next(from) != from.Add(3*time.Hour+30*time.Minute) {
		t.Errorf("BackupCron = %v", c.BackupCron)
	}
	if c.ByokMonitorCron == nil || c.ByokMonitorCron.Next(from) != from.Add(15*time.Minute) {
		t.Errorf("ByokMonitorCron = %v", c.ByokMonitorCron)
	}
	want := keywrap.Ref{Source: keywrap.Platform, VaultURL: "https://platform-kv.localhost:8443/", KeyName: "platform-backup", Version: "0123456789abcdef0123456789abcdef"}
	if c.PlatformKey != want {
		t.Errorf("PlatformKey = %+v, want %+v", c.PlatformKey, want)
	}
	if !bytes.Equal(c.KeyVaultCAPEM, pemBytes) {
		t.Errorf("KeyVaultCAPEM is not the file's content")
	}
	if c.RestoreSpoolLimit != 64<<20 {
		t.Errorf("RestoreSpoolLimit = %d", c.RestoreSpoolLimit)
	}
	// The parsed values are not dumped: the text forms are.
	if d := c.Dump(); d["backupSchedule"] != "0 30 3 * * *" || d["BackupCron"] != nil || d["KeyVaultCAPEM"] != nil {
		t.Errorf("dump = %v", d)
	}
}
