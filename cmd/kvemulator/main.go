// Command kvemulator runs the project's Key Vault emulator (package
// internal/devstack/kvemu) for the local stack: HTTPS on -addr with its own CA, one
// vault per host name "<vault>.localhost:<port>".
//
// Usage:
//
//	kvemulator [-addr 127.0.0.1:8443] [-ca-out kvemu-ca.pem] [-config vaults.json] [-log-level info]
//
// When ready it prints one JSON line on stdout:
//
//	{"urlTemplate":"https://{vault}.localhost:8443/","caFile":"/abs/kvemu-ca.pem",
//	 "addr":"127.0.0.1:8443","controlURL":"https://control.localhost:8443/"}
//
// Use urlTemplate as KEYVAULT_URL_TEMPLATE and caFile as KEYVAULT_CA_FILE.
// Without -ca-out the CA is written to a fresh file in the temp directory.
// Logs are JSON on stderr. SIGINT or SIGTERM stops it.
//
// # Config file
//
// -config names a JSON file declaring vaults, their keys and grants:
//
//	{"vaults": [{
//	   "name": "contoso-kv",                                  // vault name, the host's first label
//	   "tenantId": "11111111-1111-1111-1111-111111111111",    // the vault's Entra tenant
//	   "permissionModel": "rbac",                             // "rbac" or "accessPolicy" (default)
//	   "keys": [{"name": "twinit-backup", "kty": "RSA", "size": 2048,
//	             "ops": ["wrapKey", "unwrapKey"],            // kty RSA|RSA-HSM|EC|EC-HSM; ops omitted = all
//	             "tags": {"twinit-tenants": "acme"}}],       // optional: the key's tags (API.md §5)
//	   "grants": [{"caller": "emulator.<applicationId>.<tenantId>",
//	               "ops": ["get", "wrapKey", "unwrapKey"]},
//	              {"caller": "emulator.platform", "ops": ["get", "wrapKey", "unwrapKey"]}]
//	}]}
//
// Unknown fields are errors. Grant operations: get, list, create, update,
// delete, rotate, import, recover, purge, backup, restore, wrapKey,
// unwrapKey, encrypt, decrypt, sign, verify. The admin token
// "emulator.admin" may always do everything.
//
// # Control API
//
// Another process (a demo script) can flip the emulator's state over the
// same TLS listener, on host control.localhost or under the path prefix
// /_emulator/ on any host, with "Authorization: Bearer emulator.admin":
//
//	POST   /_emulator/vaults        {"name","tenantId","permissionModel"}
//	POST   /_emulator/grant         {"vault","caller","ops"}
//	POST   /_emulator/revoke        {"vault","caller"}
//	POST   /_emulator/keys          {"vault","name","kty","size","ops","tags"} -> {"kid"}
//	POST   /_emulator/keys/rotate   {"vault","name"}                          -> {"kid"}
//	POST   /_emulator/keys/enabled  {"vault","name","version","enabled"}
//	POST   /_emulator/keys/ops      {"vault","name","version","ops"}
//	POST   /_emulator/keys/expiry   {"vault","name","version","nbf","exp"}    (Unix seconds, 0 = unset)
//	POST   /_emulator/keys/tags     {"vault","name","version","tags"}        (replaces the version's tags)
//	POST   /_emulator/keys/delete   {"vault","name"}
//	POST   /_emulator/fault         {"vault","latency":"2s","throttle":3,"retryAfter":true,
//	                                 "serverError":-1,"serverCode":503,"down":true}   (vault "" = all; {} clears)
//	GET    /_emulator/requests
//	DELETE /_emulator/requests
//
// Example: curl --cacert kvemu-ca.pem --connect-to control.localhost:8443:127.0.0.1:8443
// -H 'Authorization: Bearer emulator.admin' -d '{"vault":"contoso-kv","name":"twinit-backup","enabled":false}'
// https://control.localhost:8443/keys/enabled
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/twinit/byok-backup/internal/devstack/kvemu"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "kvemulator:", err)
		os.Exit(1)
	}
}

// ready is the line printed on stdout once the emulator serves.
type ready struct {
	URLTemplate string `json:"urlTemplate"`
	CAFile      string `json:"caFile"`
	Addr        string `json:"addr"`
	ControlURL  string `json:"controlURL"`
}

// run starts the emulator, prints the ready line and serves until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kvemulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8443", "listen address (keep it on loopback)")
	caOut := fs.String("ca-out", "", "write the CA certificate PEM here (default: a new file in the temp directory)")
	configPath := fs.String("config", "", "JSON file declaring vaults, keys and grants")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error (debug logs every request)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("invalid -log-level %q", *logLevel)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))

	var cfg kvemu.Config
	if *configPath != "" {
		data, err := os.ReadFile(*configPath)
		if err != nil {
			return fmt.Errorf("failed to read the config: %w", err)
		}
		if cfg, err = kvemu.ParseConfig(data); err != nil {
			return err
		}
	}

	e, err := kvemu.Start(kvemu.Options{Addr: *addr, Logger: log})
	if err != nil {
		return err
	}
	defer e.Close()
	if err := e.Apply(cfg); err != nil {
		return err
	}

	caPath := *caOut
	if caPath == "" {
		f, err := os.CreateTemp("", "kvemu-ca-*.pem")
		if err != nil {
			return fmt.Errorf("failed to create the CA file: %w", err)
		}
		caPath = f.Name()
		_ = f.Close()
	}
	if caPath, err = filepath.Abs(caPath); err != nil {
		return err
	}
	if err := e.WriteCA(caPath); err != nil {
		return err
	}
	line, _ := json.Marshal(ready{
		URLTemplate: e.URLTemplate(),
		CAFile:      caPath,
		Addr:        e.Addr(),
		ControlURL:  "https://control.localhost:" + strconv.Itoa(e.Port()) + "/",
	})
	if _, err := fmt.Fprintf(stdout, "%s\n", line); err != nil {
		return err
	}
	log.Info("kvemulator ready", "urlTemplate", e.URLTemplate(), "caFile", caPath, "vaults", len(cfg.Vaults))

	<-ctx.Done()
	log.Info("kvemulator stopping")
	if err := e.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
