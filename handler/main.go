// Command handler is the Azure Functions custom handler of the BYOK backup
// service. main only starts: config → logger → [app.New] (Azure clients,
// services, routes) → server.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/twinit/byok-backup/internal/app"
	"github.com/twinit/byok-backup/internal/config"
	"github.com/twinit/byok-backup/internal/edge/server"
)

func main() {
	os.Exit(run())
}

func run() int {
	gcPercent := app.TuneRuntime(os.LookupEnv)
	cfg, err := config.LoadEnv(os.LookupEnv)
	logger := newLogger(os.Stdout, cfg)
	if err != nil {
		if cerr := (*config.Error)(nil); errors.As(err, &cerr) {
			for _, p := range cerr.Problems {
				logger.Error("invalid setting", "problem", p)
			}
		}
		logger.Error("startup failed: fix the settings above", "err", err)
		return 1
	}
	logger.Info("starting", "config", cfg, "gcPercent", gcPercent)
	warnSettings(cfg, logger)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	if err := serve(ctx, cfg, logger); err != nil {
		logger.Error("handler stopped with an error", "err", err)
		return 1
	}
	return 0
}

// newLogger writes cfg.LogFormat lines (JSON unless LOG_FORMAT=text) at
// cfg.LogLevel.
func newLogger(w io.Writer, cfg config.Config) *slog.Logger {
	o := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == config.LogText {
		return slog.New(slog.NewTextHandler(w, o))
	}
	return slog.New(slog.NewJSONHandler(w, o))
}

func serve(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	a, err := app.New(ctx, cfg, app.Deps{Logger: logger})
	if err != nil {
		return err
	}
	h, err := a.Handler(ctx)
	if err != nil {
		return err
	}
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
}

// warnSettings logs, at warning level, settings that weaken a safeguard.
func warnSettings(cfg config.Config, logger *slog.Logger) {
	if cfg.ByokOwnershipTag == "" {
		logger.Warn("key ownership check is off", "setting", "BYOK_OWNERSHIP_TAG",
			"why", "BYOK_OWNERSHIP_TAG is empty: any tenant's BYOK admin can configure any key the application can reach; staff must verify each customer's key before it is configured (API.md §5)")
	}
}
