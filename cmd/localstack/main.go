// Command localstack brings the whole service up on this machine without
// Azure (what `bash scripts/run.sh` runs): Azurite with data under
// .local/azurite, the Key Vault emulator with a platform vault and key, a
// local token issuer, the packaged app (dist/app) and the local runner in
// front of the handler. It checks GET /api/health, prints URLs, tokens and
// example calls, and runs until Ctrl-C, then stops everything. The screen
// gets plain lines; the JSON logs go to .local/localstack.log.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/twinit/byok-backup/internal/devstack/azurite"
)

func main() {
	root, err := azurite.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "run this from inside the repository:", err)
		os.Exit(1)
	}
	cfg := config{Src: root, Log: slog.New(slog.NewJSONHandler(os.Stderr, nil)), Out: os.Stdout}
	flag.StringVar(&cfg.DataDir, "data", filepath.Join(root, ".local"), "folder for Azurite's data (kept between runs), the emulator CA and logs")
	flag.StringVar(&cfg.Dist, "dist", filepath.Join(root, "dist"), "package output folder (app root and zip)")
	flag.StringVar(&cfg.SettingsFile, "settings", filepath.Join(root, "local.settings.json"), "optional local.settings.json whose Values add to the stack's settings")
	flag.IntVar(&cfg.Port, "port", 7071, "runner port on 127.0.0.1 (the Functions host's usual port)")
	flag.IntVar(&cfg.AzuritePorts[0], "blob-port", 10000, "Azurite blob port (0: free port)")
	flag.IntVar(&cfg.AzuritePorts[1], "queue-port", 10001, "Azurite queue port (0: free port)")
	flag.IntVar(&cfg.AzuritePorts[2], "table-port", 10002, "Azurite table port (0: free port)")
	flag.StringVar(&cfg.KVAddr, "kv-addr", "127.0.0.1:8443", "Key Vault emulator address (vaults are https://<vault>.localhost:<port>/)")
	flag.StringVar(&cfg.AuthAddr, "auth-addr", "127.0.0.1:7990", "local token issuer address (JWKS at /.well-known/jwks.json)")
	flag.BoolVar(&cfg.Fresh, "fresh", false, "delete Azurite's data before starting")
	flag.BoolVar(&cfg.DepsOnly, "deps-only", false, "start Azurite, the emulator and the issuer and package the app, but not the runner: then run `func start` in the app root")
	flag.BoolVar(&cfg.NoDemo, "no-demo", false, "skip the demo (seed a tenant, enable BYOK, back up, fall back, restore, verify, re-wrap, rotate, retention, purge)")
	flag.IntVar(&cfg.DemoFiles, "demo-files", 24, "files the demo tenant gets (up to 3 MiB each): 2000 makes backups long enough to watch their progress")
	flag.Parse()
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "cannot create the data folder:", err)
		os.Exit(1)
	}
	closeLog, err := openLog(&cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer closeLog()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := up(ctx, cfg)
	if err != nil {
		cfg.Log.Error("local stack failed", "err", err)
		fmt.Printf("\nThe local stack failed: %v\nDetails in the logs: %s\n", err, cfg.LogFile)
		closeLog()
		os.Exit(1)
	}
	printWelcome(s)
	var failed <-chan struct{} // nil (never ready) with -deps-only
	if s.run != nil {
		failed = s.run.Failed()
	}
	select {
	case <-ctx.Done():
	case <-failed:
		cfg.Log.Error("the handler kept crashing; stopping")
		fmt.Printf("The handler kept crashing; stopping. Details in the logs: %s\n", cfg.LogFile)
	}
	stop()
	cfg.Log.Info("stopping the local stack")
	fmt.Println("Stopping the local stack...")
	drain, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s.close(drain)
}

// printWelcome tells the developer what runs where and how to call it.
func printWelcome(s *stack) {
	operator, err1 := s.issuer.Token("acme", "platform.operator")
	admin, err2 := s.issuer.Token("acme", "byok.admin", "backup.operator")
	if err1 != nil || err2 != nil {
		s.cfg.Log.Warn("could not mint example tokens", "err", fmt.Sprint(err1, err2))
	}
	base := s.BaseURL()
	link := s.signInLink()
	s.out().printf(`
Local stack is up (Ctrl-C stops everything).

  Settings page        %[10]s
  Logs (JSON)          %[11]s   (Azurite: %[12]s)
  API (local runner)   %[1]s/api/...        health: %[1]s/api/health
  Run a timer now      curl -X POST %[1]s/admin/functions/BackupScheduler
  Azurite              %[2]s
  Key Vault emulator   %[3]s   (platform key: %[4]s)
  Token issuer (JWKS)  %[5]s
  App root             %[6]s   (zip: %[7]s)

Tokens (valid 1 h):
  export OPERATOR_TOKEN=%[8]s   # platform.operator, any tenant
  export ACME_TOKEN=%[9]s   # tenant acme: byok.admin, backup.operator

Try:
  curl -s %[1]s/api/health
  curl -s -H "Authorization: Bearer $ACME_TOKEN" %[1]s/api/tenants/acme/byok
  curl -s -X POST -H "Authorization: Bearer $ACME_TOKEN" %[1]s/api/tenants/acme/backups
  curl -s -H "Authorization: Bearer $OPERATOR_TOKEN" %[1]s/api/tenants/acme/backups

With Azure Functions Core Tools installed, run the app on the real host instead:
  bash scripts/run.sh -deps-only      # everything but the runner
  cd %[6]s && func start              # uses the local.settings.json written there
`, base, s.az.QueueURL(), s.kv.URLTemplate(), s.settings["PLATFORM_KEY_ID"], s.issuer.JWKSURL(),
		s.app.AppDir, s.app.Zip, operator, admin, link, s.cfg.LogFile, filepath.Join(s.az.Dir, "azurite.log"))
}
