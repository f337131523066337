// Package app is the one wiring of the service: from a parsed
// [config.Config] to the Azure clients, the adapters, the services and the
// routes. The handler, the integration tests that run the whole app and the
// benchmark commands all build it with [New], so what they exercise is
// what ships.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	assetsazure "github.com/twinit/byok-backup/internal/assets/azure"
	"github.com/twinit/byok-backup/internal/audit"
	audittable "github.com/twinit/byok-backup/internal/audit/aztable"
	"github.com/twinit/byok-backup/internal/backup"
	blobazure "github.com/twinit/byok-backup/internal/blobstore/azure"
	"github.com/twinit/byok-backup/internal/byok"
	byoktable "github.com/twinit/byok-backup/internal/byok/aztable"
	"github.com/twinit/byok-backup/internal/catalog"
	catalogtable "github.com/twinit/byok-backup/internal/catalog/aztable"
	"github.com/twinit/byok-backup/internal/config"
	"github.com/twinit/byok-backup/internal/edge/api"
	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/edge/server"
	jobqueueaz "github.com/twinit/byok-backup/internal/jobqueue/azqueue"
	"github.com/twinit/byok-backup/internal/keywrap"
	"github.com/twinit/byok-backup/internal/lease"
	leasetable "github.com/twinit/byok-backup/internal/lease/aztable"
	"github.com/twinit/byok-backup/internal/restore"
	retentiontable "github.com/twinit/byok-backup/internal/retention/aztable"
	"github.com/twinit/byok-backup/internal/rewrap"
	tenantstable "github.com/twinit/byok-backup/internal/tenants/aztable"
)

// MaxDequeueCount is host.json's extensions.queues.maxDequeueCount: on that
// delivery a job that can't run is marked failed rather than left to the
// poison queue. A test checks the two agree.
const MaxDequeueCount = 5

// Deps is what the app takes from its caller rather than from Config.
type Deps struct {
	// Logger receives every component's logs; nil discards them.
	Logger *slog.Logger
	// Now is every component's clock; nil = time.Now. Tests move it.
	Now func() time.Time
	// ServiceTables, when set, holds every table but the tenants' Assets:
	// the service's own state (catalog, leases, BYOK settings, audit, …).
	// nil = AzureWebJobsStorage's table service, as the contract has it.
	// The benchmark gives them an Azurite of their own: Azurite saves its
	// whole table database after any write, so with a 10 GiB tenant's
	// 200,000 records beside them each heartbeat cost it seconds of CPU
	// that Table storage does not spend (docs/BENCHMARKS.md).
	ServiceTables *aztables.ServiceClient
}

// App is the wired service. The exported fields are the services and the
// stores they share, for callers that drive them directly (benchmarks,
// tests); the handler only serves [App.Handler].
type App struct {
	Config   config.Config
	Backups  *backup.Service
	Restores *restore.Service
	BYOK     *byok.Service
	// Catalog, Assets, BackupBlobs and Jobs are the adapters the services
	// use: the Backups/Restores tables, the tenants' assets, the backups
	// container and the job queues.
	Catalog     *catalogtable.Store
	Assets      *assetsazure.Store
	BackupBlobs *blobazure.Store
	Jobs        *jobqueueaz.Queue
	// Rewraps serves re-wraps (API.md §7); RewrapStore is its table.
	Rewraps     *rewrap.Service
	RewrapStore *catalogtable.Rewraps
	// Wrapper is the Key Vault adapter (undecorated) and PlatformKey the
	// platform key's reference.
	Wrapper     keywrap.Wrapper
	PlatformKey keywrap.Ref

	log        *slog.Logger
	byokStore  *byoktable.Store
	backupOpts backup.Options
}

// New builds the app from cfg: the Azure clients from AzureWebJobsStorage,
// the Key Vault adapter, the stores (creating the tables and the backups
// container), and the services. It serves nothing yet.
func New(ctx context.Context, cfg config.Config, deps Deps) (*App, error) {
	logger, now := deps.Logger, deps.Now
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	// Azure clients, from AzureWebJobsStorage with explicit endpoints.
	cs := cfg.Storage.ConnectionString()
	blobs, err := azblob.NewClientFromConnectionString(cs, nil)
	if err != nil {
		return nil, fmt.Errorf("blob client: %w", err)
	}
	data, err := aztables.NewServiceClientFromConnectionString(cs, nil)
	if err != nil {
		return nil, fmt.Errorf("table client: %w", err)
	}
	tables := data
	if deps.ServiceTables != nil {
		tables = deps.ServiceTables
	}
	queues, err := azqueue.NewServiceClientFromConnectionString(cs, nil)
	if err != nil {
		return nil, fmt.Errorf("queue client: %w", err)
	}
	// Keys: one Key Vault adapter for customer and platform keys; every
	// wrap and unwrap of a backup or restore goes through the audit decorator.
	keys, err := newKeys(cfg, logger)
	if err != nil {
		return nil, err
	}
	n := cfg.Names
	auditLog := audit.New(audittable.New(tables.NewClient(n.TableKeyAudit)), nil)
	audited := audit.NewWrapper(keys.wrapper, auditLog, logger)
	a := &App{
		Config:      cfg,
		Catalog:     catalogtable.New(tables.NewClient(n.TableBackups), tables.NewClient(n.TableRestores)),
		Assets:      assetsazure.New(data.NewClient(n.TableAssets), blobs.ServiceClient().NewContainerClient(n.ContainerAssets), &assetsazure.Options{Logger: logger}),
		BackupBlobs: blobazure.New(blobs.ServiceClient().NewContainerClient(n.ContainerBackups)),
		Jobs:        jobqueueaz.New(queues),
		Wrapper:     keys.wrapper,
		PlatformKey: keys.platform,
		log:         logger,
		byokStore:   byoktable.New(tables.NewClient(n.TableByokSettings)),
		RewrapStore: catalogtable.NewRewraps(tables.NewClient(n.TableRewraps)),
	}
	// Same table, own scope: serialises POST …/backups per tenant.
	requestLeases := lease.NewWith(leasetable.New(tables.NewClient(n.TableLeases)), &lease.Options{Scope: "backup-request", Logger: logger, Now: now})
	leases := lease.NewWith(leasetable.New(tables.NewClient(n.TableLeases)), &lease.Options{Logger: logger, Now: now})
	tenantDir := tenantstable.New(tables.NewClient(n.TableTenants), nil)
	policies := retentiontable.New(tables.NewClient(n.TableRetentionPolicies))

	// Tables and containers are created once at startup (queues on first use).
	for name, create := range map[string]func(context.Context) error{
		n.TableByokSettings: a.byokStore.CreateTable, n.TableKeyAudit: auditLog.EnsureTable,
		n.TableBackups + "/" + n.TableRestores: a.Catalog.CreateTables, n.TableLeases: leases.CreateTable,
		n.TableTenants: tenantDir.CreateTable, n.ContainerBackups: a.BackupBlobs.CreateContainer,
		n.TableRetentionPolicies: policies.CreateTable,
		n.TableRewraps:           a.RewrapStore.CreateTable,
	} {
		if err := create(ctx); err != nil {
			return nil, fmt.Errorf("create %s: %w", name, err)
		}
	}

	// BYOK settings and monitor. Validation gets the undecorated adapter:
	// the audit validator records one `validate` row per validation.
	a.BYOK, err = byok.New(byok.Options{
		Store:              a.byokStore,
		Validator:          audit.NewValidator(keys.wrapper, auditLog, logger),
		VaultURLTemplate:   cfg.KeyVaultURLTemplate,
		AppClientID:        cfg.ByokAppClientID,
		Logger:             logger,
		MonitorConcurrency: cfg.ByokMonitorConcurrency,
		Now:                now,
		OwnershipTag:       cfg.ByokOwnershipTag,
		Backups: byok.BackupCountFunc(func(ctx context.Context, tenant, keyID string) (byok.BackupCounts, error) {
			c, err := catalog.CountKeys(ctx, a.Catalog, tenant, keyID)
			return byok.BackupCounts(c), err
		}),
	})
	if err != nil {
		return nil, fmt.Errorf("byok service: %w", err)
	}
	a.backupOpts = backup.Options{
		Source:          a.Assets,
		Catalog:         a.Catalog,
		Blobs:           a.BackupBlobs,
		Wrapper:         audited,
		Keys:            a.BYOK,
		PlatformKey:     keys.platform,
		Leases:          leases,
		RequestLeases:   requestLeases,
		Queue:           a.Jobs,
		QueueName:       n.QueueBackupJobs,
		Tenants:         tenantDir,
		Schedule:        cfg.BackupCron,
		Logger:          logger,
		ChunkSize:       cfg.BackupChunkSize,
		Parallelism:     cfg.BackupParallelism,
		MaxDequeueCount: MaxDequeueCount,
		TransientGrace:  cfg.ByokTransientGrace,
		// Deletion's circuit breaker (API.md §6).
		MaxDeleteFraction: cfg.RetentionMaxDeleteFraction,
		// Retention and soft delete (API.md §6).
		Policies:         policies,
		RetentionDefault: cfg.RetentionDefault,
		SoftDeleteDays:   cfg.BackupSoftDeleteDays,
		SoftDeleteWindow: cfg.DevSoftDeleteWindow,
		Now:              now,
		// JOB_STALE_AFTER with the defaults' ratios: lease as long as the
		// stale age, heartbeat every sixth.
		LeaseTTL:       cfg.JobStaleAfter,
		StaleAfter:     cfg.JobStaleAfter,
		HeartbeatEvery: cfg.JobStaleAfter / 6,
		SweepGrace:     cfg.JobSweepGrace,
	}
	if a.Backups, err = backup.New(a.backupOpts); err != nil {
		return nil, fmt.Errorf("backup service: %w", err)
	}
	a.Restores, err = restore.New(restore.Options{
		Catalog:         a.Catalog,
		Blobs:           a.BackupBlobs,
		Target:          restore.StoreTarget(a.Assets),
		Wrapper:         audited,
		Keys:            a.BYOK,
		PlatformKey:     keys.platform,
		URLTemplate:     cfg.KeyVaultURLTemplate,
		ApplicationID:   cfg.ByokAppClientID,
		Leases:          leases, // the same lease as backups: one job per tenant at a time
		Queue:           a.Jobs,
		QueueName:       n.QueueRestoreJobs,
		Logger:          logger,
		Parallelism:     cfg.BackupParallelism,
		MaxDequeueCount: MaxDequeueCount,
		Now:             now,
		SpoolLimit:      cfg.RestoreSpoolLimit,
		LeaseTTL:        cfg.JobStaleAfter,
		StaleAfter:      cfg.JobStaleAfter,
		ProgressEvery:   cfg.JobStaleAfter / 12,
		SweepGrace:      cfg.JobSweepGrace,
	})
	if err != nil {
		return nil, fmt.Errorf("restore service: %w", err)
	}
	a.Rewraps, err = rewrap.New(rewrap.Options{
		Backups:         a.Catalog,
		Rewraps:         a.RewrapStore,
		Blobs:           a.BackupBlobs,
		Wrapper:         audited,
		Keys:            a.BYOK,
		PlatformKey:     keys.platform,
		URLTemplate:     cfg.KeyVaultURLTemplate,
		Leases:          leases, // the tenant's one job lease: never beside a backup or restore
		Queue:           a.Jobs,
		QueueName:       n.QueueRewrapJobs,
		Logger:          logger,
		MaxDequeueCount: MaxDequeueCount,
		Now:             now,
		LeaseTTL:        cfg.JobStaleAfter,
		StaleAfter:      cfg.JobStaleAfter,
		ProgressEvery:   cfg.JobStaleAfter / 12,
	})
	if err != nil {
		return nil, fmt.Errorf("rewrap service: %w", err)
	}
	return a, nil
}

// BackupOptions are the options the backup service was built with, for a
// caller that needs a variant of the same wiring (the benchmarks back up
// from instrumented sources).
func (a *App) BackupOptions() backup.Options { return a.backupOpts }

// Handler is the edge: the caller-token verifier (its JWKS fetched now),
// the health checks and every function's registration on the server.
func (a *App) Handler(ctx context.Context) (http.Handler, error) {
	cfg := a.Config
	verifier, err := auth.NewVerifier(ctx, auth.VerifierOptions{
		JWKSURL:     cfg.Auth.JWKSURL,
		Issuer:      cfg.Auth.Issuer,
		Audience:    cfg.Auth.Audience,
		TenantClaim: cfg.Auth.TenantClaim,
		RolesClaim:  cfg.Auth.RolesClaim,
		Logger:      a.log,
	})
	if err != nil {
		return nil, err
	}
	srv := server.New(server.Config{
		Logger:          a.log,
		Auth:            verifier,
		FunctionTimeout: cfg.FunctionTimeout,
		Checks: []server.NamedCheck{
			{Name: "storage", Checker: a.byokStore},
			{Name: "platformKey", Checker: byok.NewPlatformKeyCheck(a.Wrapper, a.PlatformKey, nil)},
		},
	})
	api.Register(srv, api.Services{Backups: a.Backups, Restores: a.Restores, Byok: a.BYOK, Rewraps: a.Rewraps, Logger: a.log})
	return srv.Handler(), nil
}
