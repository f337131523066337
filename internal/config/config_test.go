package config

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/retention"
)

const testSecret = "s3cr3t-client-secret-value"

// validEnv is a complete, valid local configuration.
func validEnv() map[string]string {
	return map[string]string{
		"FUNCTIONS_CUSTOMHANDLER_PORT":      "7072",
		"AzureWebJobsStorage":               "UseDevelopmentStorage=true",
		"PLATFORM_KEY_ID":                   "https://platform-kv.localhost:8443/keys/platform-backup",
		"PLATFORM_CREDENTIAL":               "emulator",
		"BYOK_APP_CLIENT_ID":                "4ab9f542-0305-4d62-94c9-69786fb5d1ec",
		"BYOK_CREDENTIAL":                   "emulator",
		"KEYVAULT_URL_TEMPLATE":             "https://{vault}.localhost:8443/",
		"AUTH_ISSUER":                       "http://127.0.0.1:7990/",
		"AUTH_AUDIENCE":                     "api://byok-backup",
		"AUTH_JWKS_URL":                     "http://127.0.0.1:7990/jwks.json",
		"BYOK_FEDERATED_IDENTITY_CLIENT_ID": "",
	}
}

func getenv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(getenv(validEnv()))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Port", c.Port, 7072},
		{"FunctionTimeout", c.FunctionTimeout, 30 * time.Minute},
		{"LogLevel", c.LogLevel, slog.LevelInfo},
		{"LogFormat", c.LogFormat, LogJSON},
		{"BackupSchedule", c.BackupSchedule, "0 0 2 * * *"},
		{"ByokMonitorSchedule", c.ByokMonitorSchedule, "0 */15 * * * *"},
		{"Names", c.Names, Names{"Tenants", "Assets", "ByokSettings", "Backups", "Restores", "KeyAudit", "Leases", "assets", "backups", "backup-jobs", "restore-jobs", "RetentionPolicies", "Rewraps", "rewrap-jobs"}},
		{"RetentionSchedule", c.RetentionSchedule, "0 30 3 * * *"},
		{"RetentionDefault", c.RetentionDefault, retention.Policy{KeepLast: 7, KeepDaily: 30, KeepWeekly: 12, KeepMonthly: 12}},
		{"BackupSoftDeleteDays", c.BackupSoftDeleteDays, 14},
		{"BackupChunkSize", c.BackupChunkSize, 4 << 20},
		{"BackupParallelism", c.BackupParallelism, 4},
		{"ByokMonitorConcurrency", c.ByokMonitorConcurrency, 16},
		{"RetentionMaxDeleteFraction", c.RetentionMaxDeleteFraction, 0.5},
		{"ByokOwnershipTag", c.ByokOwnershipTag, "twinit-tenants"},
		{"TenantClaim", c.Auth.TenantClaim, "tenant"},
		{"RolesClaim", c.Auth.RolesClaim, "roles"},
		{"Storage.BlobURL", c.Storage.BlobURL, "http://127.0.0.1:10000/devstoreaccount1"},
		{"Storage.QueueURL", c.Storage.QueueURL, "http://127.0.0.1:10001/devstoreaccount1"},
		{"Storage.TableURL", c.Storage.TableURL, "http://127.0.0.1:10002/devstoreaccount1"},
		{"PlatformCredential", c.PlatformCredential, "emulator"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	env := validEnv()
	delete(env, "PLATFORM_CREDENTIAL")
	delete(env, "KEYVAULT_URL_TEMPLATE")
	env["BYOK_CREDENTIAL"] = ""
	env["BYOK_FEDERATED_IDENTITY_CLIENT_ID"] = "11111111-2222-3333-4444-555555555555"
	c, err = Load(getenv(env))
	if err != nil {
		t.Fatal(err)
	}
	if c.PlatformCredential != CredManagedIdentity || c.ByokCredential != CredFederated || c.KeyVaultURLTemplate != DefaultKeyVaultURLTemplate {
		t.Errorf("credential/template defaults = %q, %q, %q", c.PlatformCredential, c.ByokCredential, c.KeyVaultURLTemplate)
	}
}

func TestLoadOverrides(t *testing.T) {
	env := validEnv()
	set := map[string]string{
		"FUNCTIONS_CUSTOMHANDLER_PORT": "", "FUNCTIONS_HTTPWORKER_PORT": "9001",
		"FUNCTION_TIMEOUT": "10m", "LOG_LEVEL": "debug",
		"TABLE_TENANTS": "T1x", "TABLE_ASSETS": "A2x", "TABLE_BYOK_SETTINGS": "B3x", "TABLE_BACKUPS": "C4x",
		"TABLE_RESTORES": "D5x", "TABLE_KEY_AUDIT": "E6x", "TABLE_LEASES": "F7x", "CONTAINER_ASSETS": "a-1", "CONTAINER_BACKUPS": "b-2",
		"QUEUE_BACKUP_JOBS": "bqx", "QUEUE_RESTORE_JOBS": "rqx", "TABLE_RETENTION_POLICIES": "G8x", "TABLE_REWRAPS": "G9x", "QUEUE_REWRAP_JOBS": "wqx",
		"RETENTION_SCHEDULE": "0 0 4 * * *", "RETENTION_DEFAULT": "keepYearly=3", "BACKUP_SOFT_DELETE_DAYS": "1",
		"BACKUP_SCHEDULE": "30 5 1 * * *", "BYOK_MONITOR_SCHEDULE": "0 0 * * * *",
		"BACKUP_CHUNK_SIZE": "2MiB", "BACKUP_PARALLELISM": "32", "BYOK_MONITOR_CONCURRENCY": "1",
		"RETENTION_MAX_DELETE_FRACTION": "0.25",
		"AUTH_TENANT_CLAIM":             "tid", "AUTH_ROLES_CLAIM": "scp",
		"PLATFORM_IDENTITY_CLIENT_ID": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
	}
	for k, v := range set {
		env[k] = v
	}
	c, err := Load(getenv(env))
	if err != nil {
		t.Fatal(err)
	}
	want := Names{"T1x", "A2x", "B3x", "C4x", "D5x", "E6x", "F7x", "a-1", "b-2", "bqx", "rqx", "G8x", "G9x", "wqx"}
	if c.Names != want {
		t.Errorf("Names = %+v", c.Names)
	}
	if c.Port != 9001 || c.FunctionTimeout != 10*time.Minute || c.LogLevel != slog.LevelDebug ||
		c.BackupSchedule != "30 5 1 * * *" || c.ByokMonitorSchedule != "0 0 * * * *" ||
		c.BackupChunkSize != 2<<20 || c.BackupParallelism != 32 || c.ByokMonitorConcurrency != 1 ||
		c.RetentionMaxDeleteFraction != 0.25 ||
		c.RetentionSchedule != "0 0 4 * * *" || c.RetentionDefault != (retention.Policy{KeepYearly: 3}) || c.BackupSoftDeleteDays != 1 ||
		c.Auth.TenantClaim != "tid" || c.Auth.RolesClaim != "scp" || c.PlatformIdentityClientID != set["PLATFORM_IDENTITY_CLIENT_ID"] {
		t.Errorf("overrides not applied: %+v", c)
	}
}

func TestLoadProblems(t *testing.T) {
	tests := []struct {
		setting string // the setting the problem must name
		env     map[string]string
	}{
		{"FUNCTIONS_CUSTOMHANDLER_PORT", map[string]string{"FUNCTIONS_CUSTOMHANDLER_PORT": ""}},
		{"FUNCTIONS_CUSTOMHANDLER_PORT", map[string]string{"FUNCTIONS_CUSTOMHANDLER_PORT": "http"}},
		{"FUNCTIONS_CUSTOMHANDLER_PORT", map[string]string{"FUNCTIONS_CUSTOMHANDLER_PORT": "70000"}},
		{"FUNCTION_TIMEOUT", map[string]string{"FUNCTION_TIMEOUT": "00:30:00"}},
		{"FUNCTION_TIMEOUT", map[string]string{"FUNCTION_TIMEOUT": "10s"}},
		{"LOG_LEVEL", map[string]string{"LOG_LEVEL": "loud"}},
		{"LOG_FORMAT", map[string]string{"LOG_FORMAT": "xml"}},
		{"AzureWebJobsStorage", map[string]string{"AzureWebJobsStorage": ""}},
		{"AzureWebJobsStorage", map[string]string{"AzureWebJobsStorage": "garbage"}},
		{"AzureWebJobsStorage", map[string]string{"AzureWebJobsStorage": "AccountName=a"}},
		{"AzureWebJobsStorage", map[string]string{"AzureWebJobsStorage": "AccountKey=" + testSecret}},
		{"AzureWebJobsStorage", map[string]string{"AzureWebJobsStorage": "AccountName=a;AccountKey=" + testSecret + ";BlobEndpoint=ftp://x"}},
		{"AzureWebJobsStorage", map[string]string{"AzureWebJobsStorage": "DefaultEndpointsProtocol=gopher;AccountName=a;AccountKey=" + testSecret}},
		{"TABLE_TENANTS", map[string]string{"TABLE_TENANTS": "1abc"}},
		{"TABLE_ASSETS", map[string]string{"TABLE_ASSETS": "as"}},
		{"TABLE_BYOK_SETTINGS", map[string]string{"TABLE_BYOK_SETTINGS": "byok-settings"}},
		{"TABLE_BACKUPS", map[string]string{"TABLE_BACKUPS": "B_"}},
		{"TABLE_RESTORES", map[string]string{"TABLE_RESTORES": strings.Repeat("R", 64)}},
		{"TABLE_KEY_AUDIT", map[string]string{"TABLE_KEY_AUDIT": "Key Audit"}},
		{"TABLE_LEASES", map[string]string{"TABLE_LEASES": "Leases!"}},
		{"CONTAINER_ASSETS", map[string]string{"CONTAINER_ASSETS": "Assets"}},
		{"CONTAINER_BACKUPS", map[string]string{"CONTAINER_BACKUPS": "back--ups"}},
		{"QUEUE_BACKUP_JOBS", map[string]string{"QUEUE_BACKUP_JOBS": "-jobs"}},
		{"QUEUE_RESTORE_JOBS", map[string]string{"QUEUE_RESTORE_JOBS": "r"}},
		{"QUEUE_REWRAP_JOBS", map[string]string{"QUEUE_REWRAP_JOBS": "rewrap--jobs"}},
		{"TABLE_REWRAPS", map[string]string{"TABLE_REWRAPS": "Re-wraps"}},
		{"BACKUP_SCHEDULE", map[string]string{"BACKUP_SCHEDULE": "0 2 * * *"}},
		{"BACKUP_SCHEDULE", map[string]string{"BACKUP_SCHEDULE": "0 0 25 * * *"}},
		{"BYOK_MONITOR_SCHEDULE", map[string]string{"BYOK_MONITOR_SCHEDULE": "00:15:00"}},
		{"PLATFORM_KEY_ID", map[string]string{"PLATFORM_KEY_ID": ""}},
		{"PLATFORM_KEY_ID", map[string]string{"PLATFORM_KEY_ID": "http://kv.vault.azure.net/keys/k"}},
		{"PLATFORM_KEY_ID", map[string]string{"PLATFORM_KEY_ID": "https://kv.vault.azure.net/secrets/k"}},
		{"PLATFORM_CREDENTIAL", map[string]string{"PLATFORM_CREDENTIAL": "password"}},
		{"PLATFORM_IDENTITY_CLIENT_ID", map[string]string{"PLATFORM_IDENTITY_CLIENT_ID": "not-a-guid"}},
		{"BYOK_APP_CLIENT_ID", map[string]string{"BYOK_APP_CLIENT_ID": ""}},
		{"BYOK_APP_CLIENT_ID", map[string]string{"BYOK_APP_CLIENT_ID": "4ab9f542"}},
		{"BYOK_CREDENTIAL", map[string]string{"BYOK_CREDENTIAL": "kerberos"}},
		{"BYOK_FEDERATED_IDENTITY_CLIENT_ID", map[string]string{"BYOK_CREDENTIAL": "federated"}},
		{"BYOK_FEDERATED_IDENTITY_CLIENT_ID", map[string]string{"BYOK_CREDENTIAL": "federated", "BYOK_FEDERATED_IDENTITY_CLIENT_ID": "x"}},
		{"BYOK_CLIENT_SECRET", map[string]string{"BYOK_CREDENTIAL": "secret"}},
		{"BYOK_CLIENT_CERTIFICATE_PATH", map[string]string{"BYOK_CREDENTIAL": "certificate"}},
		{"BYOK_CLIENT_CERTIFICATE_PATH", map[string]string{"BYOK_CREDENTIAL": "certificate", "BYOK_CLIENT_CERTIFICATE_PATH": "/nonexistent/cert.pem"}},
		{"KEYVAULT_URL_TEMPLATE", map[string]string{"KEYVAULT_URL_TEMPLATE": "http://{vault}.vault.azure.net/"}},
		{"KEYVAULT_URL_TEMPLATE", map[string]string{"KEYVAULT_URL_TEMPLATE": "https://vault.azure.net/{vault}"}},
		{"KEYVAULT_URL_TEMPLATE", map[string]string{"KEYVAULT_URL_TEMPLATE": "https://{vault}.{vault}.azure.net/"}},
		{"KEYVAULT_URL_TEMPLATE", map[string]string{"KEYVAULT_URL_TEMPLATE": "https://kv.vault.azure.net/"}},
		{"KEYVAULT_CA_FILE", map[string]string{"KEYVAULT_CA_FILE": "/nonexistent/ca.pem"}},
		{"AUTH_ISSUER", map[string]string{"AUTH_ISSUER": ""}},
		{"AUTH_AUDIENCE", map[string]string{"AUTH_AUDIENCE": ""}},
		{"AUTH_JWKS_URL", map[string]string{"AUTH_JWKS_URL": ""}},
		{"AUTH_JWKS_URL", map[string]string{"AUTH_JWKS_URL": "http://login.example.com/jwks"}},
		{"AUTH_JWKS_URL", map[string]string{"AUTH_JWKS_URL": "jwks.json"}},
		{"BACKUP_CHUNK_SIZE", map[string]string{"BACKUP_CHUNK_SIZE": "big"}},
		{"BACKUP_CHUNK_SIZE", map[string]string{"BACKUP_CHUNK_SIZE": "512KiB"}},
		{"BACKUP_CHUNK_SIZE", map[string]string{"BACKUP_CHUNK_SIZE": "16MiB"}},
		{"BACKUP_CHUNK_SIZE", map[string]string{"BACKUP_CHUNK_SIZE": "1048577"}},
		{"BACKUP_PARALLELISM", map[string]string{"BACKUP_PARALLELISM": "0"}},
		{"BACKUP_PARALLELISM", map[string]string{"BACKUP_PARALLELISM": "33"}},
		{"BACKUP_PARALLELISM", map[string]string{"BACKUP_PARALLELISM": "four"}},
		{"BYOK_MONITOR_CONCURRENCY", map[string]string{"BYOK_MONITOR_CONCURRENCY": "65"}},
		{"RETENTION_MAX_DELETE_FRACTION", map[string]string{"RETENTION_MAX_DELETE_FRACTION": "1.5"}},
		{"RETENTION_MAX_DELETE_FRACTION", map[string]string{"RETENTION_MAX_DELETE_FRACTION": "-0.1"}},
		{"RETENTION_MAX_DELETE_FRACTION", map[string]string{"RETENTION_MAX_DELETE_FRACTION": "0"}},
		{"RETENTION_MAX_DELETE_FRACTION", map[string]string{"RETENTION_MAX_DELETE_FRACTION": "NaN"}},
		{"RETENTION_MAX_DELETE_FRACTION", map[string]string{"RETENTION_MAX_DELETE_FRACTION": "half"}},
		{"RETENTION_SCHEDULE", map[string]string{"RETENTION_SCHEDULE": "30 3 * * *"}},
		{"RETENTION_DEFAULT", map[string]string{"RETENTION_DEFAULT": "keepLast=-1"}},
		{"RETENTION_DEFAULT", map[string]string{"RETENTION_DEFAULT": "keepHourly=24"}},
		{"BACKUP_SOFT_DELETE_DAYS", map[string]string{"BACKUP_SOFT_DELETE_DAYS": "0"}},
		{"BACKUP_SOFT_DELETE_DAYS", map[string]string{"BACKUP_SOFT_DELETE_DAYS": "1.5"}},
		{"TABLE_RETENTION_POLICIES", map[string]string{"TABLE_RETENTION_POLICIES": "R-P"}},
	}
	for _, tt := range tests {
		var parts []string
		for k, v := range tt.env {
			parts = append(parts, k+"="+v)
		}
		t.Run(strings.Join(parts, ","), func(t *testing.T) {
			env := validEnv()
			for k, v := range tt.env {
				env[k] = v
			}
			_, err := Load(getenv(env))
			var cerr *Error
			if !errors.As(err, &cerr) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if len(cerr.Problems) != 1 {
				t.Fatalf("want exactly one problem, got %q", cerr.Problems)
			}
			if !strings.HasPrefix(cerr.Problems[0], tt.setting+": ") {
				t.Errorf("problem %q does not name %s", cerr.Problems[0], tt.setting)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("error repeats a secret: %v", err)
			}
		})
	}
}

func TestLoadCollectsAllProblems(t *testing.T) {
	_, err := Load(getenv(map[string]string{"BACKUP_PARALLELISM": "0", "BYOK_CREDENTIAL": "emulator"}))
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("err = %v", err)
	}
	want := []string{"FUNCTIONS_CUSTOMHANDLER_PORT", "AzureWebJobsStorage", "PLATFORM_KEY_ID", "BYOK_APP_CLIENT_ID",
		"AUTH_ISSUER", "AUTH_AUDIENCE", "AUTH_JWKS_URL", "BACKUP_PARALLELISM"}
	if len(cerr.Problems) != len(want) {
		t.Fatalf("problems = %q", cerr.Problems)
	}
	for i, w := range want {
		if !strings.HasPrefix(cerr.Problems[i], w+": ") {
			t.Errorf("problem %d = %q, want it about %s", i, cerr.Problems[i], w)
		}
	}
}

func TestLoadFiles(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, selfSignedPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := validEnv()
	env["KEYVAULT_CA_FILE"] = ca
	env["BYOK_CREDENTIAL"] = "certificate"
	env["BYOK_CLIENT_CERTIFICATE_PATH"] = ca
	c, err := Load(getenv(env))
	if err != nil {
		t.Fatal(err)
	}
	if c.KeyVaultCAFile != ca || c.ByokClientCertificatePath != ca || c.ByokCredential != CredCertificate {
		t.Errorf("files not taken: %+v", c)
	}
	env["KEYVAULT_CA_FILE"] = notPEM
	_, err = Load(getenv(env))
	var cerr *Error
	if !errors.As(err, &cerr) || len(cerr.Problems) != 1 || !strings.HasPrefix(cerr.Problems[0], "KEYVAULT_CA_FILE: holds no PEM") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseStorage(t *testing.T) {
	tests := []struct {
		cs                  string
		blob, queue, table  string
		account             string
		hasKey, hasSAS, dev bool
	}{
		{"UseDevelopmentStorage=true", "http://127.0.0.1:10000/devstoreaccount1", "http://127.0.0.1:10001/devstoreaccount1", "http://127.0.0.1:10002/devstoreaccount1", "devstoreaccount1", true, false, true},
		{"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + testSecret + ";EndpointSuffix=core.windows.net",
			"https://acct.blob.core.windows.net", "https://acct.queue.core.windows.net", "https://acct.table.core.windows.net", "acct", true, false, false},
		{"AccountName=acct;SharedAccessSignature=?sv=2022&sig=" + testSecret + ";EndpointSuffix=core.chinacloudapi.cn",
			"https://acct.blob.core.chinacloudapi.cn", "https://acct.queue.core.chinacloudapi.cn", "https://acct.table.core.chinacloudapi.cn", "acct", false, true, false},
		{"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + testSecret + ";BlobEndpoint=http://127.0.0.1:41001/devstoreaccount1;QueueEndpoint=http://127.0.0.1:41002/devstoreaccount1;TableEndpoint=http://127.0.0.1:41003/devstoreaccount1;",
			"http://127.0.0.1:41001/devstoreaccount1", "http://127.0.0.1:41002/devstoreaccount1", "http://127.0.0.1:41003/devstoreaccount1", "devstoreaccount1", true, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.account+"/"+tt.blob, func(t *testing.T) {
			s, err := ParseStorage(tt.cs)
			if err != nil {
				t.Fatal(err)
			}
			if s.BlobURL != tt.blob || s.QueueURL != tt.queue || s.TableURL != tt.table || s.AccountName != tt.account ||
				(s.AccountKey != "") != tt.hasKey || (s.SAS != "") != tt.hasSAS || s.Development != tt.dev {
				t.Fatalf("got %+v", s)
			}
			// The normalized string parses back to the same endpoints.
			again, err := ParseStorage(s.ConnectionString())
			again.Development = s.Development // the normalized form is explicit
			if err != nil || again != s {
				t.Fatalf("round trip: %+v, %v", again, err)
			}
		})
	}
}

func TestDumpHasNoSecrets(t *testing.T) {
	env := validEnv()
	env["AzureWebJobsStorage"] = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + testSecret + "storagekey;SharedAccessSignature=sig" + testSecret
	env["BYOK_CREDENTIAL"] = "secret"
	env["BYOK_CLIENT_SECRET"] = testSecret
	env["BYOK_CLIENT_CERTIFICATE_PASSWORD"] = "pfx-" + testSecret
	c, err := Load(getenv(env))
	if err != nil {
		t.Fatal(err)
	}
	if c.ByokClientSecret != testSecret || c.ByokClientCertificatePassword != "pfx-"+testSecret || c.Storage.AccountKey == "" || c.Storage.SAS == "" {
		t.Fatal("secrets not loaded")
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "config", c)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "config", c)
	b, _ := json.Marshal(c)
	buf.Write(b)
	out := buf.String()
	if strings.Contains(out, testSecret) {
		t.Fatalf("secret in dump: %s", out)
	}
	// The dump is not empty: it shows the effective non-secret settings.
	for _, want := range []string{`"platformKeyId":"https://platform-kv.localhost:8443/keys/platform-backup"`, `"accountName":"acct"`, `"byokCredential":"secret"`, `"functionTimeout":"30m0s"`} {
		if !strings.Contains(out, want) {
			t.Errorf("dump lacks %s: %s", want, out)
		}
	}
}

func selfSignedPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// BYOK_TRANSIENT_GRACE defaults to 15m, takes a duration between 1m and
// 24h, and is dumped readably.
func TestByokTransientGrace(t *testing.T) {
	c, err := Load(getenv(validEnv()))
	if err != nil || c.ByokTransientGrace != 15*time.Minute || c.Dump()["byokTransientGrace"] != "15m0s" {
		t.Fatalf("default = %v, %v, dump %v", c.ByokTransientGrace, err, c.Dump()["byokTransientGrace"])
	}
	env := validEnv()
	env["BYOK_TRANSIENT_GRACE"] = "1h30m"
	if c, err := Load(getenv(env)); err != nil || c.ByokTransientGrace != 90*time.Minute {
		t.Fatalf("1h30m = %v, %v", c.ByokTransientGrace, err)
	}
	for _, v := range []string{"0", "30s", "25h", "soon", "-5m"} {
		env["BYOK_TRANSIENT_GRACE"] = v
		_, err := Load(getenv(env))
		var cerr *Error
		if !errors.As(err, &cerr) || len(cerr.Problems) != 1 || !strings.HasPrefix(cerr.Problems[0], "BYOK_TRANSIENT_GRACE: ") {
			t.Errorf("%q: err = %v", v, err)
		}
	}
}

// BYOK_OWNERSHIP_TAG set to "" turns the ownership check off (API.md §5):
// LoadEnv tells it from an unset setting, which means the default tag.
func TestOwnershipTag(t *testing.T) {
	load := func(env map[string]string) (Config, error) {
		return LoadEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	}
	env := validEnv()
	c, err := load(env)
	if err != nil || c.ByokOwnershipTag != "twinit-tenants" {
		t.Fatalf("unset: %q %v", c.ByokOwnershipTag, err)
	}
	env["BYOK_OWNERSHIP_TAG"] = ""
	if c, err = load(env); err != nil || c.ByokOwnershipTag != "" {
		t.Fatalf("empty: %q %v", c.ByokOwnershipTag, err)
	}
	env["BYOK_OWNERSHIP_TAG"] = "owners"
	if c, err = load(env); err != nil || c.ByokOwnershipTag != "owners" {
		t.Fatalf("set: %q %v", c.ByokOwnershipTag, err)
	}
	env["BYOK_OWNERSHIP_TAG"] = "bad\ntag"
	if _, err = load(env); err == nil || !strings.Contains(err.Error(), "BYOK_OWNERSHIP_TAG") {
		t.Fatalf("control character accepted: %v", err)
	}
}
func TestLoadJobTimings(t *testing.T) {
	c, err := Load(getenv(validEnv()))
	if err != nil {
		t.Fatal(err)
	}
	if c.JobStaleAfter != 2*time.Minute || c.JobSweepGrace != time.Hour {
		t.Errorf("defaults = %s, %s; want 2m0s, 1h0m0s", c.JobStaleAfter, c.JobSweepGrace)
	}
	env := validEnv()
	env["JOB_STALE_AFTER"], env["JOB_SWEEP_GRACE"] = "8s", "30s"
	if c, err = Load(getenv(env)); err != nil {
		t.Fatal(err)
	}
	if c.JobStaleAfter != 8*time.Second || c.JobSweepGrace != 30*time.Second {
		t.Errorf("overrides = %s, %s", c.JobStaleAfter, c.JobSweepGrace)
	}
	for _, bad := range []map[string]string{
		{"JOB_STALE_AFTER": "1s"},
		{"JOB_STALE_AFTER": "2h"},
		{"JOB_STALE_AFTER": "soon"},
		{"JOB_SWEEP_GRACE": "10d"},
		{"JOB_STALE_AFTER": "1m", "JOB_SWEEP_GRACE": "30s"}, // a sweep would fail a job a retry could take over
	} {
		env := validEnv()
		var name string
		for k, v := range bad {
			env[k], name = v, k
		}
		if len(bad) == 2 {
			name = "JOB_SWEEP_GRACE"
		}
		_, err := Load(getenv(env))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%v: err = %v, want a problem naming %s", bad, err, name)
		}
	}
}

// DEV_SOFT_DELETE_WINDOW (the local demo's purge) is unset by default,
// takes a duration between 1s and 24h, and only with the emulator
// credential: a deployment cannot shorten the one-day minimum with it.
func TestDevSoftDeleteWindow(t *testing.T) {
	env := validEnv()
	env["PLATFORM_CREDENTIAL"] = CredEmulator
	if c, err := Load(getenv(env)); err != nil || c.DevSoftDeleteWindow != 0 {
		t.Fatalf("default = %v, %v", c.DevSoftDeleteWindow, err)
	}
	env["DEV_SOFT_DELETE_WINDOW"] = "10s"
	if c, err := Load(getenv(env)); err != nil || c.DevSoftDeleteWindow != 10*time.Second {
		t.Fatalf("10s = %v, %v", c.DevSoftDeleteWindow, err)
	}
	bad := func(env map[string]string) {
		t.Helper()
		_, err := Load(getenv(env))
		var cerr *Error
		if !errors.As(err, &cerr) || len(cerr.Problems) != 1 || !strings.HasPrefix(cerr.Problems[0], "DEV_SOFT_DELETE_WINDOW: ") {
			t.Errorf("%v: err = %v", env["DEV_SOFT_DELETE_WINDOW"], err)
		}
	}
	for _, v := range []string{"0", "500ms", "25h", "soon"} {
		env["DEV_SOFT_DELETE_WINDOW"] = v
		bad(env)
	}
	env["DEV_SOFT_DELETE_WINDOW"] = "10s"
	env["PLATFORM_CREDENTIAL"] = CredManagedIdentity
	bad(env)
}
