// Package config reads the service's settings (API.md §4) from the
// environment, validates all of them at startup and reports every problem
// at once, one sentence per setting. Secrets are tagged json:"-" so the
// startup dump ([Config.LogValue]) can't show them.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/twinit/byok-backup/internal/keywrap"
	"github.com/twinit/byok-backup/internal/retention"
)

// Log formats (LOG_FORMAT).
const (
	LogJSON = "json"
	LogText = "text"
)

// Credential kinds (API.md §4).
const (
	CredManagedIdentity = "managed-identity"
	CredEmulator        = "emulator"
	CredFederated       = "federated"
	CredSecret          = "secret"
	CredCertificate     = "certificate"
)

// Config is the effective configuration.
type Config struct {
	// Port is FUNCTIONS_CUSTOMHANDLER_PORT: the handler listens on 127.0.0.1:Port.
	Port int `json:"port"`
	// FunctionTimeout is FUNCTION_TIMEOUT; it must equal host.json's
	// functionTimeout, since server timeouts and invocation deadlines derive from it.
	FunctionTimeout time.Duration `json:"functionTimeout"`
	LogLevel        slog.Level    `json:"logLevel"`
	// LogFormat is LOG_FORMAT: LogJSON (the default: Application Insights
	// and log queries parse it) or LogText (slog's key=value lines, for a
	// person reading a terminal).
	LogFormat string `json:"logFormat"`

	Storage Storage `json:"storage"`
	Names   Names   `json:"names"`

	BackupSchedule      string `json:"backupSchedule"`
	ByokMonitorSchedule string `json:"byokMonitorSchedule"`
	// BackupCron and ByokMonitorCron are the schedules, parsed once by Load.
	BackupCron      cron.Schedule `json:"-"`
	ByokMonitorCron cron.Schedule `json:"-"`

	PlatformKeyID string `json:"platformKeyId"`
	// PlatformKey is PLATFORM_KEY_ID, parsed by Load.
	PlatformKey              keywrap.Ref `json:"-"`
	PlatformCredential       string      `json:"platformCredential"`
	PlatformIdentityClientID string      `json:"platformIdentityClientId,omitempty"`

	ByokAppClientID               string `json:"byokAppClientId"`
	ByokCredential                string `json:"byokCredential"`
	ByokFederatedIdentityClientID string `json:"byokFederatedIdentityClientId,omitempty"`
	ByokClientSecret              string `json:"-"` // secret
	ByokClientCertificatePath     string `json:"byokClientCertificatePath,omitempty"`
	ByokClientCertificatePassword string `json:"-"` // secret; PFX only
	// ByokOwnershipTag is BYOK_OWNERSHIP_TAG (API.md §5); "" = check off.
	ByokOwnershipTag string `json:"byokOwnershipTag"`

	KeyVaultURLTemplate string `json:"keyVaultUrlTemplate"`
	KeyVaultCAFile      string `json:"keyVaultCaFile,omitempty"`
	// KeyVaultCAPEM is KEYVAULT_CA_FILE's content, read and checked once by
	// Load, so the wiring never reads the file a second time.
	KeyVaultCAPEM []byte `json:"-"`

	Auth Auth `json:"auth"`

	BackupChunkSize        int `json:"backupChunkSize"`
	BackupParallelism      int `json:"backupParallelism"`
	ByokMonitorConcurrency int `json:"byokMonitorConcurrency"`

	// ByokTransientGrace is BYOK_TRANSIENT_GRACE: how long after a backup's
	// first attempt a transient customer key failure is retried before the
	// backup falls back (API.md §5).
	ByokTransientGrace time.Duration `json:"byokTransientGrace"`
	// RetentionMaxDeleteFraction is the circuit breaker of blob deletion
	// (API.md §6): a sweep or retention run that would delete more than
	// this fraction of a tenant's backups deletes nothing for that tenant.
	RetentionMaxDeleteFraction float64 `json:"retentionMaxDeleteFraction"`
	// RetentionSchedule is RETENTION_SCHEDULE (the BackupRetention timer's
	// NCRONTAB; the host reads it, Load only checks it).
	RetentionSchedule string `json:"retentionSchedule"`
	// RetentionDefault is RETENTION_DEFAULT parsed: the policy of a tenant
	// that stored none (API.md §6).
	RetentionDefault retention.Policy `json:"retentionDefault"`
	// DevSoftDeleteWindow is DEV_SOFT_DELETE_WINDOW (local stack only,
	// PLATFORM_CREDENTIAL=emulator): when set, it replaces
	// BackupSoftDeleteDays so the demo can show a purge; 0 = unset.
	DevSoftDeleteWindow time.Duration `json:"devSoftDeleteWindow"`
	// BackupSoftDeleteDays is BACKUP_SOFT_DELETE_DAYS: how long a deleted
	// backup keeps its blobs and can be undeleted (at least 1).
	BackupSoftDeleteDays int `json:"backupSoftDeleteDays"`
	// RestoreSpoolLimitMB caps a restore's local spool (the records'
	// ciphertext and the files' headers, kept between verifying and
	// writing); a larger restore is refused before it writes anything.
	RestoreSpoolLimitMB int `json:"restoreSpoolLimitMb"`
	// JobStaleAfter is JOB_STALE_AFTER: the heartbeat age after which a
	// running backup or restore is taken to be a crashed attempt and taken
	// over. The tenant lease lives as long, and heartbeats are a fraction
	// of it. JobSweepGrace is JOB_SWEEP_GRACE: how long the sweeps wait
	// before failing a job that was never taken over, and before deleting
	// a failed backup's blobs. Short values exist for the kill -9 soak.
	JobStaleAfter time.Duration `json:"jobStaleAfter"`
	JobSweepGrace time.Duration `json:"jobSweepGrace"`
	// RestoreSpoolLimit is RestoreSpoolLimitMB in bytes.
	RestoreSpoolLimit int64 `json:"-"`
}

// BYOK_TRANSIENT_GRACE bounds.
const (
	DefaultByokTransientGrace = 15 * time.Minute
	MinByokTransientGrace     = time.Minute
	MaxByokTransientGrace     = 24 * time.Hour
)

// Auth is the caller-identity settings (API.md §2).
type Auth struct {
	Issuer      string `json:"issuer"`
	Audience    string `json:"audience"`
	JWKSURL     string `json:"jwksUrl"`
	TenantClaim string `json:"tenantClaim"`
	RolesClaim  string `json:"rolesClaim"`
}

// Names are the storage names of API.md §3, each overridable.
type Names struct {
	TableTenants      string `json:"tableTenants"`
	TableAssets       string `json:"tableAssets"`
	TableByokSettings string `json:"tableByokSettings"`
	TableBackups      string `json:"tableBackups"`
	TableRestores     string `json:"tableRestores"`
	TableKeyAudit     string `json:"tableKeyAudit"`
	TableLeases       string `json:"tableLeases"`
	ContainerAssets   string `json:"containerAssets"`
	ContainerBackups  string `json:"containerBackups"`
	// QueueBackupJobs and QueueRestoreJobs are where jobs are enqueued; the
	// triggers in functions/*/function.json read the same settings
	// (%QUEUE_BACKUP_JOBS%, %QUEUE_RESTORE_JOBS%), so one setting moves both.
	QueueBackupJobs  string `json:"queueBackupJobs"`
	QueueRestoreJobs string `json:"queueRestoreJobs"`
	// TableRetentionPolicies holds the tenants' retention policies (§6).
	TableRetentionPolicies string `json:"tableRetentionPolicies"`
	// TableRewraps and QueueRewrapJobs: re-wrap jobs (API.md §7); the
	// RewrapWorker trigger reads %QUEUE_REWRAP_JOBS%.
	TableRewraps    string `json:"tableRewraps"`
	QueueRewrapJobs string `json:"queueRewrapJobs"`
}

// Defaults.
const (
	DefaultBackupSchedule      = "0 0 2 * * *"
	DefaultByokMonitorSchedule = "0 */15 * * * *"
	DefaultKeyVaultURLTemplate = "https://{vault}.vault.azure.net/"
	DefaultQueueBackupJobs     = "backup-jobs"
	DefaultQueueRestoreJobs    = "restore-jobs"
	DefaultQueueRewrapJobs     = "rewrap-jobs"
	DefaultFunctionTimeout     = 30 * time.Minute
	KiB                        = 1 << 10
	MiB                        = 1 << 20
	DefaultBackupChunkSize     = 4 * MiB
	// ChunkAlign keeps chunks a whole number of 64 KiB units, so chunk
	// blobs split evenly into staged blocks.
	ChunkAlign                    = 64 * KiB
	MinBackupChunkSize            = 1 * MiB
	MaxBackupChunkSize            = 8 * MiB
	DefaultBackupParallelism      = 4
	MaxBackupParallelism          = 32
	DefaultByokMonitorConcurrency = 16
	MaxByokMonitorConcurrency     = 64
	// DefaultRetentionMaxDeleteFraction is API.md §6's default.
	DefaultRetentionMaxDeleteFraction = 0.5
	// DefaultRetentionSchedule and DefaultBackupSoftDeleteDays are API.md §6's defaults.
	DefaultRetentionSchedule    = "0 30 3 * * *"
	DefaultBackupSoftDeleteDays = 14
	MaxBackupSoftDeleteDays     = 3650
	DefaultRestoreSpoolLimitMB  = 1024
	MaxRestoreSpoolLimitMB      = 1 << 20
	DefaultJobStaleAfter        = 2 * time.Minute
	MinJobStaleAfter            = 3 * time.Second
	DefaultJobSweepGrace        = time.Hour
)

// Error lists every invalid setting; Problems are ready to log one by one.
type Error struct {
	Problems []string
}

func (e *Error) Error() string {
	return fmt.Sprintf("invalid configuration (%d problems): %s", len(e.Problems), strings.Join(e.Problems, "; "))
}

// ErrInvalid is matched by errors.Is on any *Error.
var ErrInvalid = errors.New("invalid configuration")

// Is lets errors.Is(err, ErrInvalid) match.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Dump is the effective configuration without secrets: the JSON form of
// c, in which secrets are tagged json:"-" and so can't appear.
func (c Config) Dump() map[string]any {
	b, err := json.Marshal(c)
	if err != nil {
		return map[string]any{"error": "config could not be encoded"}
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return map[string]any{"error": "config could not be encoded"}
	}
	m["functionTimeout"] = c.FunctionTimeout.String()
	m["byokTransientGrace"] = c.ByokTransientGrace.String()
	return m
}

// LogValue makes slog log [Config.Dump].
func (c Config) LogValue() slog.Value { return slog.AnyValue(c.Dump()) }
