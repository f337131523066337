// Command runner is the local stand-in for the Azure Functions host (use
// `func start` instead when Core Tools is installed). It runs a packaged app
// root: starts the handler, fires timers, pumps queues and forwards HTTP.
//
//	go run ./cmd/pack -out dist
//	go run ./cmd/runner -root dist/app -settings local.settings.json -port 7071
//
// Run a timer or queue function now: curl -X POST localhost:7071/admin/functions/<Name>
package main

import (
	"context"
	"errors"
	"flag"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/twinit/byok-backup/internal/devstack/runner"
)

func main() {
	root := flag.String("root", "dist/app", "app root: host.json beside one folder per function (see cmd/pack)")
	settingsPath := flag.String("settings", "local.settings.json", "local.settings.json whose Values become app settings; a missing file is fine")
	port := flag.Int("port", 0, "port to listen on, 127.0.0.1 only (default: settings' Host.LocalHttpPort, else 7071)")
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	if err := run(log, *root, *settingsPath, *port); err != nil {
		log.Error("runner failed", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, root, settingsPath string, port int) error {
	settings := map[string]string{}
	ls, err := runner.ReadLocalSettings(settingsPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		log.Info("no settings file; using the environment only", "settings", settingsPath)
	case err != nil:
		return err
	default:
		for k, v := range ls.Values {
			// Like Core Tools, the environment wins over local.settings.json.
			if _, set := os.LookupEnv(k); set {
				log.Info("setting from the environment overrides local.settings.json", "setting", k)
				continue
			}
			settings[k] = v
		}
		if port == 0 {
			port = ls.Host.LocalHTTPPort
		}
	}
	if port == 0 {
		port = 7071
	}
	r, err := runner.New(runner.Options{Root: root, Settings: settings, Addr: "127.0.0.1:" + strconv.Itoa(port), Logger: log})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := r.Start(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-r.Failed():
	}
	stop()
	drain, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	closeErr := r.Close(drain)
	select {
	case <-r.Failed():
		return errors.New("the handler kept crashing; see its output above")
	default:
	}
	return closeErr
}
