// Command handler is the Azure Functions custom handler of the BYOK backup
// service. main only wires: config → logger → Azure clients → services →
// routes → server. Later services are added here with a few lines each.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	assetsazure "github.com/twinit/byok-backup/internal/assets/azure"
	"github.com/twinit/byok-backup/internal/audit"
	"github.com/twinit/byok-backup/internal/backup"
	blobazure "github.com/twinit/byok-backup/internal/blobstore/azure"
	"github.com/twinit/byok-backup/internal/byok"
	catalogtable "github.com/twinit/byok-backup/internal/catalog/aztable"
	"github.com/twinit/byok-backup/internal/config"
	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/edge/invoke"
	"github.com/twinit/byok-backup/internal/edge/server"
	"github.com/twinit/byok-backup/internal/jobqueue"
	"github.com/twinit/byok-backup/internal/lease"
	"github.com/twinit/byok-backup/internal/restore"
	"github.com/twinit/byok-backup/internal/tenants"
)

// maxDequeueCount is host.json's extensions.queues.maxDequeueCount: on that
// delivery a job that can't run is marked failed rather than left to the
// poison queue. A test checks the two agree.
const maxDequeueCount = 5

func main() {
	os.Exit(run())
}

func run() int {
	cfg, err := config.LoadEnv(os.LookupEnv)
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))
	if err != nil {
		if cerr := (*config.Error)(nil); errors.As(err, &cerr) {
			for _, p := range cerr.Problems {
				logger.Error("invalid setting", "problem", p)
			}
		}
		logger.Error("startup failed: fix the settings above", "err", err)
		return 1
	}
	logger.Info("starting", "config", cfg)
	warnSettings(cfg, logger)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	if err := serve(ctx, cfg, logger); err != nil {
		logger.Error("handler stopped with an error", "err", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	return wire(ctx, cfg, logger, time.Now, func(h http.Handler) error {
		// The host always calls 127.0.0.1; never listen on other interfaces.
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port)))
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		logger.Info("listening", "addr", ln.Addr().String())
		return server.Run(ctx, ln, h, server.RunOptions{
			FunctionTimeout: cfg.FunctionTimeout,
			DrainTimeout:    60 * time.Second,
			Logger:          logger,
		})
	})
}

// wire builds the services and routes with now as their clock and hands
// the handler to run: serve listens, tests drive it in-process with a
// fake clock.
func wire(ctx context.Context, cfg config.Config, logger *slog.Logger, now func() time.Time, run func(http.Handler) error) error {
	// Azure clients, from AzureWebJobsStorage with explicit endpoints.
	cs := cfg.Storage.ConnectionString()
	blobs, err := azblob.NewClientFromConnectionString(cs, nil)
	if err != nil {
		return fmt.Errorf("blob client: %w", err)
	}
	tables, err := aztables.NewServiceClientFromConnectionString(cs, nil)
	if err != nil {
		return fmt.Errorf("table client: %w", err)
	}
	queues, err := azqueue.NewServiceClientFromConnectionString(cs, nil)
	if err != nil {
		return fmt.Errorf("queue client: %w", err)
	}
	// Keys: one Key Vault adapter for customer and platform keys; every
	// wrap and unwrap of a backup or restore goes through the audit decorator.
	keys, err := newKeys(cfg, logger)
	if err != nil {
		return err
	}
	n := cfg.Names
	auditLog := audit.New(tables.NewClient(n.TableKeyAudit), nil)
	audited := audit.NewWrapper(keys.wrapper, auditLog, logger)
	byokStore := byok.NewTableStore(tables.NewClient(n.TableByokSettings))
	catalogStore := catalogtable.New(tables.NewClient(n.TableBackups), tables.NewClient(n.TableRestores))
	// Same table, own scope: serialises POST …/backups per tenant.
	requestLeases := lease.New(tables.NewClient(n.TableLeases), &lease.Options{Scope: "backup-request", Logger: logger, Now: now})
	leases := lease.New(tables.NewClient(n.TableLeases), &lease.Options{Logger: logger, Now: now})
	tenantDir := tenants.New(tables.NewClient(n.TableTenants), nil)
	assetStore := assetsazure.New(tables.NewClient(n.TableAssets), blobs.ServiceClient().NewContainerClient(n.ContainerAssets), &assetsazure.Options{Logger: logger})
	backupBlobs := blobazure.New(blobs.ServiceClient().NewContainerClient(n.ContainerBackups))
	jobs := jobqueue.New(queues)

	// Tables and containers are created once at startup (queues on first use).
	for name, create := range map[string]func(context.Context) error{
		n.TableByokSettings: byokStore.CreateTable, n.TableKeyAudit: auditLog.EnsureTable,
		n.TableBackups + "/" + n.TableRestores: catalogStore.CreateTables, n.TableLeases: leases.CreateTable,
		n.TableTenants: tenantDir.CreateTable, n.ContainerBackups: backupBlobs.CreateContainer,
	} {
		if err := create(ctx); err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
	}

	// BYOK settings and monitor. Validation gets the undecorated adapter:
	// the audit validator records one `validate` row per validation.
	byokSvc, err := byok.New(byok.Options{
		Store:              byokStore,
		Validator:          audit.NewValidator(keys.wrapper, auditLog, logger),
		VaultURLTemplate:   cfg.KeyVaultURLTemplate,
		AppClientID:        cfg.ByokAppClientID,
		Logger:             logger,
		MonitorConcurrency: cfg.ByokMonitorConcurrency,
		Now:                now,
		OwnershipTag:       cfg.ByokOwnershipTag,
	})
	if err != nil {
		return fmt.Errorf("byok service: %w", err)
	}
	schedule, err := config.ParseSchedule(cfg.BackupSchedule)
	if err != nil {
		return fmt.Errorf("BACKUP_SCHEDULE: %w", err)
	}
	backups, err := backup.New(backup.Options{
		Source:          assetStore,
		Catalog:         catalogStore,
		Blobs:           backupBlobs,
		Wrapper:         audited,
		Keys:            byokSvc,
		PlatformKey:     keys.platform,
		Leases:          leases,
		RequestLeases:   requestLeases,
		Queue:           jobs,
		Tenants:         tenantDir,
		Schedule:        schedule,
		Logger:          logger,
		ChunkSize:       cfg.BackupChunkSize,
		Parallelism:     cfg.BackupParallelism,
		MaxDequeueCount: maxDequeueCount,
		TransientGrace:  cfg.ByokTransientGrace,
		// Deletion's circuit breaker (contract §6).
		MaxDeleteFraction: cfg.RetentionMaxDeleteFraction,
		Now:               now,
	})
	if err != nil {
		return fmt.Errorf("backup service: %w", err)
	}
	restores, err := restore.New(restore.Options{
		Catalog:         catalogStore,
		Blobs:           backupBlobs,
		Target:          restore.StoreTarget(assetStore),
		Wrapper:         audited,
		Keys:            byokSvc,
		PlatformKey:     keys.platform,
		URLTemplate:     cfg.KeyVaultURLTemplate,
		ApplicationID:   cfg.ByokAppClientID,
		Leases:          leases, // the same lease as backups: one job per tenant at a time
		Queue:           jobs,
		Logger:          logger,
		Parallelism:     cfg.BackupParallelism,
		MaxDequeueCount: maxDequeueCount,
		Now:             now,
		SpoolLimit:      int64(cfg.RestoreSpoolLimitMB) << 20,
	})
	if err != nil {
		return fmt.Errorf("restore service: %w", err)
	}

	verifier, err := auth.NewVerifier(ctx, auth.VerifierOptions{
		JWKSURL:     cfg.Auth.JWKSURL,
		Issuer:      cfg.Auth.Issuer,
		Audience:    cfg.Auth.Audience,
		TenantClaim: cfg.Auth.TenantClaim,
		RolesClaim:  cfg.Auth.RolesClaim,
		Logger:      logger,
	})
	if err != nil {
		return err
	}

	srv := server.New(server.Config{
		Logger:          logger,
		Auth:            verifier,
		FunctionTimeout: cfg.FunctionTimeout,
		Checks: []server.NamedCheck{
			{Name: "storage", Checker: byokStore},
			{Name: "platformKey", Checker: byok.NewPlatformKeyCheck(keys.wrapper, keys.platform, nil)},
		},
		BackupScheduler: backups.Scheduler,
		// The 15-minute monitor timer also fails restores whose worker died
		// after its last delivery, so they don't stay "running".
		ByokMonitor: func(ctx context.Context, req *invoke.TimerRequest) error {
			return errors.Join(byokSvc.MonitorTimer(ctx, req), restores.SweepTimer(ctx, req))
		},
		BackupWorker:  backups.Worker,
		RestoreWorker: restores.Worker,
	})
	byokSvc.Install(srv.HandleAPI)
	backups.Install(srv.HandleAPI)
	restores.Install(srv.HandleAPI)

	return run(srv.Handler())
}

// warnSettings logs, at warning level, settings that weaken a safeguard.
func warnSettings(cfg config.Config, logger *slog.Logger) {
	if cfg.ByokOwnershipTag == "" {
		logger.Warn("key ownership check is off", "setting", "BYOK_OWNERSHIP_TAG",
			"why", "BYOK_OWNERSHIP_TAG is empty: any tenant's BYOK admin can configure any key the application can reach; staff must verify each customer's key before it is configured (contract §5)")
	}
}
