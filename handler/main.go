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
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/twinit/byok-backup/internal/audit"
	"github.com/twinit/byok-backup/internal/auth"
	"github.com/twinit/byok-backup/internal/byok"
	"github.com/twinit/byok-backup/internal/config"
	"github.com/twinit/byok-backup/internal/server"
)

func main() {
	os.Exit(run())
}

func run() int {
	cfg, err := config.Load(os.Getenv)
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

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	if err := serve(ctx, cfg, logger); err != nil {
		logger.Error("handler stopped with an error", "err", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
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
	_ = queues // used by the services of later issues

	// Keys: one Key Vault adapter for customer and platform keys; every
	// wrap and unwrap goes through the audit decorator.
	keys, err := newKeys(cfg, logger)
	if err != nil {
		return err
	}
	auditLog := audit.New(tables.NewClient(cfg.Names.TableKeyAudit), nil)
	byokStore := byok.NewTableStore(tables.NewClient(cfg.Names.TableByokSettings))
	for _, t := range []interface{ CreateTable(context.Context) error }{byokStore} {
		if err := t.CreateTable(ctx); err != nil {
			return fmt.Errorf("create tables: %w", err)
		}
	}
	if err := auditLog.EnsureTable(ctx); err != nil {
		return fmt.Errorf("create tables: %w", err)
	}
	audited := audit.NewWrapper(keys.wrapper, auditLog, logger)
	_ = audited // the backup and restore pipelines wrap and unwrap through it

	// BYOK settings and monitor. Validation gets the undecorated adapter:
	// the audit validator records one `validate` row per validation.
	byokSvc, err := byok.New(byok.Options{
		Store:              byokStore,
		Validator:          audit.NewValidator(keys.wrapper, auditLog, logger),
		VaultURLTemplate:   cfg.KeyVaultURLTemplate,
		AppClientID:        cfg.ByokAppClientID,
		Logger:             logger,
		MonitorConcurrency: cfg.ByokMonitorConcurrency,
	})
	if err != nil {
		return fmt.Errorf("byok service: %w", err)
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
			{Name: "storage", Checker: server.CheckFunc(func(ctx context.Context) error {
				_, err := blobs.ServiceClient().GetProperties(ctx, nil)
				return err
			})},
			{Name: "platformKey", Checker: byok.NewPlatformKeyCheck(keys.wrapper, keys.platform, nil)},
		},
		// Wired by later issues; until then they answer 500 "function not wired".
		BackupScheduler: nil,
		ByokMonitor:     byokSvc.MonitorTimer,
		BackupWorker:    nil,
		RestoreWorker:   nil,
	})
	byokSvc.Install(srv.HandleAPI)

	// The host always calls 127.0.0.1; never listen on other interfaces.
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port)))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	logger.Info("listening", "addr", ln.Addr().String())
	return server.Run(ctx, ln, srv.Handler(), server.RunOptions{
		FunctionTimeout: cfg.FunctionTimeout,
		DrainTimeout:    60 * time.Second,
		Logger:          logger,
	})
}
