package config

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/twinit/byok-backup/internal/keywrap"
	"github.com/twinit/byok-backup/internal/retention"
)

// loader collects one problem per bad setting instead of stopping at the first.
type loader struct {
	getenv   func(string) string
	lookup   func(string) (string, bool) // tells a setting set to "" from an unset one
	problems []string
}

func (l *loader) problem(name, format string, args ...any) {
	l.problems = append(l.problems, name+": "+fmt.Sprintf(format, args...))
}

func (l *loader) str(name, def string) string {
	if v := strings.TrimSpace(l.getenv(name)); v != "" {
		return v
	}
	return def
}

func (l *loader) required(name, what string) string {
	v := l.str(name, "")
	if v == "" {
		l.problem(name, "is required: set it to %s", what)
	}
	return v
}

func (l *loader) intRange(name string, def, min, max int) int {
	v := l.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		l.problem(name, "must be a whole number between %d and %d, got %q", min, max, v)
		return def
	}
	return n
}

// fraction reads a number in (0, 1]; 0 would never let anything be
// deleted, which is not a breaker but a switch nobody asked for.
func (l *loader) fraction(name string, def float64) float64 {
	v := l.str(name, "")
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f > 0 && f <= 1) {
		l.problem(name, "must be a number greater than 0 and at most 1, such as 0.5, got %q", v)
		return def
	}
	return f
}

func (l *loader) oneOf(name, def string, allowed ...string) string {
	v := l.str(name, def)
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a
		}
	}
	l.problem(name, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
	return "" // unknown: settings that depend on it are not checked
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func (l *loader) guid(name, v string) {
	if v != "" && !guidRE.MatchString(v) {
		l.problem(name, "must be a client id GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx), got %q", v)
	}
}

// Storage naming rules (Azure): tables 3–63 alphanumerics starting with a
// letter; containers and queues 3–63 lower-case letters, digits and single
// hyphens, starting and ending with a letter or digit.
var (
	tableNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]{2,62}$`)
	bucketRE    = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
)

func (l *loader) tableName(name, def string) string {
	v := l.str(name, def)
	if !tableNameRE.MatchString(v) {
		l.problem(name, "must be a table name (3 to 63 letters and digits, starting with a letter), got %q", v)
	}
	return v
}

func (l *loader) bucketName(name, def, kind string) string {
	v := l.str(name, def)
	if len(v) < 3 || len(v) > 63 || !bucketRE.MatchString(v) {
		l.problem(name, "must be a %s name (3 to 63 lower-case letters, digits and single hyphens), got %q", kind, v)
	}
	return v
}

var cronParser = cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// ParseSchedule parses an NCRONTAB expression with seconds
// ("{second} {minute} {hour} {day} {month} {day-of-week}"), the form the
// Functions timer trigger uses.
func ParseSchedule(s string) (cron.Schedule, error) {
	if n := len(strings.Fields(s)); n != 6 {
		return nil, fmt.Errorf("want 6 fields (second minute hour day month day-of-week), got %d", n)
	}
	return cronParser.Parse(s)
}

func (l *loader) schedule(name, def string) (string, cron.Schedule) {
	v := l.str(name, def)
	s, err := ParseSchedule(v)
	if err != nil {
		l.problem(name, "must be an NCRONTAB schedule with seconds such as %q, got %q (%v)", def, v, err)
	}
	return v, s
}

// Load reads and validates every setting. On any problem it returns an
// *Error listing all of them. An empty value counts as unset; use
// [LoadEnv] where a setting set to "" means something (BYOK_OWNERSHIP_TAG).
func Load(getenv func(string) string) (Config, error) {
	return LoadEnv(func(name string) (string, bool) {
		v := getenv(name)
		return v, v != ""
	})
}

// LoadEnv is [Load] with os.LookupEnv's signature.
func LoadEnv(lookup func(string) (string, bool)) (Config, error) {
	l := &loader{lookup: lookup, getenv: func(name string) string {
		v, _ := lookup(name)
		return v
	}}
	var c Config

	portName := "FUNCTIONS_CUSTOMHANDLER_PORT"
	port := l.str(portName, "")
	if port == "" {
		// The host sets both; the legacy name is a fallback.
		port = l.str("FUNCTIONS_HTTPWORKER_PORT", "")
	}
	if port == "" {
		l.problem(portName, "is required: the Functions host sets it; when running the handler by hand, set it to a free port such as 7072")
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		l.problem(portName, "must be a TCP port between 1 and 65535, got %q", port)
	} else {
		c.Port = n
	}

	c.FunctionTimeout = DefaultFunctionTimeout
	if v := l.str("FUNCTION_TIMEOUT", ""); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute || d > 24*time.Hour {
			l.problem("FUNCTION_TIMEOUT", "must be a duration between 1m and 24h matching host.json functionTimeout, such as 30m, got %q", v)
		} else {
			c.FunctionTimeout = d
		}
	}
	if v := l.str("LOG_LEVEL", "info"); c.LogLevel.UnmarshalText([]byte(v)) != nil {
		l.problem("LOG_LEVEL", "must be debug, info, warn or error, got %q", v)
	}
	switch v := l.str("LOG_FORMAT", LogJSON); v {
	case LogJSON, LogText:
		c.LogFormat = v
	default:
		// The problems themselves are logged: in JSON, the default.
		c.LogFormat = LogJSON
		l.problem("LOG_FORMAT", "must be json or text, got %q", v)
	}

	if cs := l.required("AzureWebJobsStorage", "UseDevelopmentStorage=true or a storage account connection string"); cs != "" {
		s, err := ParseStorage(cs)
		if err != nil {
			// err never repeats the value: it may hold the account key.
			l.problem("AzureWebJobsStorage", "is not a usable connection string: %v", err)
		}
		c.Storage = s
	}

	c.Names = Names{
		TableTenants:           l.tableName("TABLE_TENANTS", "Tenants"),
		TableAssets:            l.tableName("TABLE_ASSETS", "Assets"),
		TableByokSettings:      l.tableName("TABLE_BYOK_SETTINGS", "ByokSettings"),
		TableBackups:           l.tableName("TABLE_BACKUPS", "Backups"),
		TableRestores:          l.tableName("TABLE_RESTORES", "Restores"),
		TableKeyAudit:          l.tableName("TABLE_KEY_AUDIT", "KeyAudit"),
		TableLeases:            l.tableName("TABLE_LEASES", "Leases"),
		ContainerAssets:        l.bucketName("CONTAINER_ASSETS", "assets", "blob container"),
		ContainerBackups:       l.bucketName("CONTAINER_BACKUPS", "backups", "blob container"),
		QueueBackupJobs:        l.bucketName("QUEUE_BACKUP_JOBS", DefaultQueueBackupJobs, "queue"),
		QueueRestoreJobs:       l.bucketName("QUEUE_RESTORE_JOBS", DefaultQueueRestoreJobs, "queue"),
		TableRetentionPolicies: l.tableName("TABLE_RETENTION_POLICIES", "RetentionPolicies"),
		TableRewraps:           l.tableName("TABLE_REWRAPS", "Rewraps"),
		QueueRewrapJobs:        l.bucketName("QUEUE_REWRAP_JOBS", DefaultQueueRewrapJobs, "queue"),
	}

	c.BackupSchedule, c.BackupCron = l.schedule("BACKUP_SCHEDULE", DefaultBackupSchedule)
	c.ByokMonitorSchedule, c.ByokMonitorCron = l.schedule("BYOK_MONITOR_SCHEDULE", DefaultByokMonitorSchedule)

	if id := l.required("PLATFORM_KEY_ID", "the platform key's Key Vault key id, https://<vault>.vault.azure.net/keys/<name>[/<version>]"); id != "" {
		if vaultURL, name, version, err := keywrap.ParseKeyID(id); err != nil {
			l.problem("PLATFORM_KEY_ID", "must be a Key Vault key id https://<vault-host>/keys/<name>[/<version>], got %q", id)
		} else {
			c.PlatformKey = keywrap.Ref{Source: keywrap.Platform, VaultURL: vaultURL, KeyName: name, Version: version}
		}
		c.PlatformKeyID = id
	}
	c.PlatformCredential = l.oneOf("PLATFORM_CREDENTIAL", CredManagedIdentity, CredManagedIdentity, CredEmulator)
	c.PlatformIdentityClientID = l.str("PLATFORM_IDENTITY_CLIENT_ID", "")
	l.guid("PLATFORM_IDENTITY_CLIENT_ID", c.PlatformIdentityClientID)

	c.ByokAppClientID = l.required("BYOK_APP_CLIENT_ID", "the client id of the multi-tenant application customers grant access to")
	l.guid("BYOK_APP_CLIENT_ID", c.ByokAppClientID)
	c.ByokCredential = l.oneOf("BYOK_CREDENTIAL", CredFederated, CredFederated, CredSecret, CredCertificate, CredEmulator)
	c.ByokFederatedIdentityClientID = l.str("BYOK_FEDERATED_IDENTITY_CLIENT_ID", "")
	l.guid("BYOK_FEDERATED_IDENTITY_CLIENT_ID", c.ByokFederatedIdentityClientID)
	c.ByokClientSecret = l.str("BYOK_CLIENT_SECRET", "")
	c.ByokClientCertificatePath = l.str("BYOK_CLIENT_CERTIFICATE_PATH", "")
	c.ByokClientCertificatePassword = l.getenv("BYOK_CLIENT_CERTIFICATE_PASSWORD") // may be blank, or contain spaces
	switch c.ByokCredential {
	case CredFederated:
		if c.ByokFederatedIdentityClientID == "" {
			l.problem("BYOK_FEDERATED_IDENTITY_CLIENT_ID", "is required when BYOK_CREDENTIAL is federated: set it to the client id of the user-assigned managed identity used as federated credential")
		}
	case CredSecret:
		if c.ByokClientSecret == "" {
			l.problem("BYOK_CLIENT_SECRET", "is required when BYOK_CREDENTIAL is secret")
		}
	case CredCertificate:
		if c.ByokClientCertificatePath == "" {
			l.problem("BYOK_CLIENT_CERTIFICATE_PATH", "is required when BYOK_CREDENTIAL is certificate: set it to a PEM or PFX file")
		} else if _, err := os.Stat(c.ByokClientCertificatePath); err != nil {
			l.problem("BYOK_CLIENT_CERTIFICATE_PATH", "can't be read: %v", err)
		}
	}

	// Set to "" it turns the ownership check off (API.md §5); unset is
	// the default tag.
	c.ByokOwnershipTag = keywrap.DefaultOwnershipTag
	if v, ok := l.lookup("BYOK_OWNERSHIP_TAG"); ok {
		c.ByokOwnershipTag = strings.TrimSpace(v)
		if len(c.ByokOwnershipTag) > 512 || strings.ContainsFunc(c.ByokOwnershipTag, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			l.problem("BYOK_OWNERSHIP_TAG", "must be a Key Vault tag name (at most 512 printable characters) or empty to turn the key ownership check off, got %q", v)
		}
	}

	c.KeyVaultURLTemplate = l.str("KEYVAULT_URL_TEMPLATE", DefaultKeyVaultURLTemplate)
	if _, err := keywrap.VaultURL(c.KeyVaultURLTemplate, "probe-vault"); err != nil {
		l.problem("KEYVAULT_URL_TEMPLATE", "must be an https URL with {vault} exactly once in its host name, such as %q, got %q", DefaultKeyVaultURLTemplate, c.KeyVaultURLTemplate)
	}
	c.KeyVaultCAFile = l.str("KEYVAULT_CA_FILE", "")
	if c.KeyVaultCAFile != "" {
		if pem, err := os.ReadFile(c.KeyVaultCAFile); err != nil {
			l.problem("KEYVAULT_CA_FILE", "can't be read: %v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			l.problem("KEYVAULT_CA_FILE", "holds no PEM certificate")
		} else {
			c.KeyVaultCAPEM = pem
		}
	}

	c.Auth = Auth{
		Issuer:      l.required("AUTH_ISSUER", "the issuer (iss) of caller tokens"),
		Audience:    l.required("AUTH_AUDIENCE", "the audience (aud) caller tokens are issued for"),
		JWKSURL:     l.required("AUTH_JWKS_URL", "the URL of the issuer's JSON Web Key Set"),
		TenantClaim: l.str("AUTH_TENANT_CLAIM", "tenant"),
		RolesClaim:  l.str("AUTH_ROLES_CLAIM", "roles"),
	}
	if c.Auth.JWKSURL != "" && !secureURL(c.Auth.JWKSURL) {
		l.problem("AUTH_JWKS_URL", "must be an https URL (http only on a loopback address), got %q", c.Auth.JWKSURL)
	}

	c.BackupChunkSize = DefaultBackupChunkSize
	if v := l.str("BACKUP_CHUNK_SIZE", ""); v != "" {
		n, err := parseSize(v)
		switch {
		case err != nil:
			l.problem("BACKUP_CHUNK_SIZE", "must be a size in bytes, KiB or MiB such as 4MiB, got %q", v)
		case n < MinBackupChunkSize || n > MaxBackupChunkSize:
			l.problem("BACKUP_CHUNK_SIZE", "must be between 1 MiB and 8 MiB, got %q", v)
		case n%ChunkAlign != 0:
			l.problem("BACKUP_CHUNK_SIZE", "must be a multiple of 64 KiB, got %q", v)
		default:
			c.BackupChunkSize = n
		}
	}
	c.BackupParallelism = l.intRange("BACKUP_PARALLELISM", DefaultBackupParallelism, 1, MaxBackupParallelism)
	c.ByokMonitorConcurrency = l.intRange("BYOK_MONITOR_CONCURRENCY", DefaultByokMonitorConcurrency, 1, MaxByokMonitorConcurrency)
	c.ByokTransientGrace = DefaultByokTransientGrace
	if v := l.str("BYOK_TRANSIENT_GRACE", ""); v != "" {
		if d, err := time.ParseDuration(v); err != nil || d < MinByokTransientGrace || d > MaxByokTransientGrace {
			l.problem("BYOK_TRANSIENT_GRACE", "must be a duration between 1m and 24h such as 15m, got %q", v)
		} else {
			c.ByokTransientGrace = d
		}
	}
	c.RetentionMaxDeleteFraction = l.fraction("RETENTION_MAX_DELETE_FRACTION", DefaultRetentionMaxDeleteFraction)
	c.RetentionSchedule, _ = l.schedule("RETENTION_SCHEDULE", DefaultRetentionSchedule)
	// Unset is API.md's default; "keepLast=0" keeps everything.
	if p, err := retention.Parse(l.str("RETENTION_DEFAULT", retention.DefaultSetting)); err != nil {
		l.problem("RETENTION_DEFAULT", "must be comma-separated counts such as %q (all zero keeps everything): %v", retention.DefaultSetting, err)
	} else {
		c.RetentionDefault = p
	}
	c.BackupSoftDeleteDays = l.intRange("BACKUP_SOFT_DELETE_DAYS", DefaultBackupSoftDeleteDays, 1, MaxBackupSoftDeleteDays)
	// Development only: the local demo shows a purge without waiting a day.
	// Tied to the emulator credential so no deployment can shorten the
	// contract's one-day minimum by a stray setting.
	if v := l.str("DEV_SOFT_DELETE_WINDOW", ""); v != "" {
		if c.PlatformCredential != CredEmulator {
			l.problem("DEV_SOFT_DELETE_WINDOW", "is for the local stack only: it needs PLATFORM_CREDENTIAL=%s", CredEmulator)
		} else {
			c.DevSoftDeleteWindow = l.duration("DEV_SOFT_DELETE_WINDOW", 0, time.Second, 24*time.Hour)
		}
	}
	c.RestoreSpoolLimitMB = l.intRange("RESTORE_SPOOL_LIMIT_MB", DefaultRestoreSpoolLimitMB, 1, MaxRestoreSpoolLimitMB)
	c.JobStaleAfter = l.duration("JOB_STALE_AFTER", DefaultJobStaleAfter, MinJobStaleAfter, time.Hour)
	c.JobSweepGrace = l.duration("JOB_SWEEP_GRACE", DefaultJobSweepGrace, MinJobStaleAfter, 7*24*time.Hour)
	if c.JobSweepGrace < c.JobStaleAfter {
		// A sweep must never fail a job that a redelivery could still take over.
		l.problem("JOB_SWEEP_GRACE", "must not be shorter than JOB_STALE_AFTER (%s), got %s", c.JobStaleAfter, c.JobSweepGrace)
	}
	c.RestoreSpoolLimit = int64(c.RestoreSpoolLimitMB) << 20

	if len(l.problems) > 0 {
		return c, &Error{Problems: l.problems}
	}
	return c, nil
}

// duration reads a Go duration between lo and hi, def when unset.
func (l *loader) duration(name string, def, lo, hi time.Duration) time.Duration {
	v := l.str(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < lo || d > hi {
		l.problem(name, "must be a duration between %s and %s such as %s, got %q", lo, hi, def, v)
		return def
	}
	return d
}

// secureURL accepts https URLs, and http only to a loopback host (the local
// token issuer).
func secureURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil {
		return false
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		h := u.Hostname()
		if h == "localhost" || strings.HasSuffix(h, ".localhost") {
			return true
		}
		ip := net.ParseIP(h)
		return ip != nil && ip.IsLoopback()
	}
	return false
}

// parseSize reads "4194304", "4096KiB", "4MiB" (also K, KB, M, MB as binary units).
func parseSize(s string) (int, error) {
	s = strings.TrimSpace(s)
	mult := 1
	lower := strings.ToLower(s)
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"kib", KiB}, {"kb", KiB}, {"k", KiB}, {"mib", MiB}, {"mb", MiB}, {"m", MiB}} {
		if strings.HasSuffix(lower, u.suffix) {
			mult = u.mult
			s = strings.TrimSpace(s[:len(s)-len(u.suffix)])
			break
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > (1<<31)/mult {
		return 0, fmt.Errorf("bad size")
	}
	return n * mult, nil
}
