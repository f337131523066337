package byok

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/audit"
	"github.com/twinit/byok-backup/internal/credential"
	"github.com/twinit/byok-backup/internal/devstack/kvemu"
	"github.com/twinit/byok-backup/internal/keywrap"
	"github.com/twinit/byok-backup/internal/keywrap/keyvault"
	"github.com/twinit/byok-backup/internal/testing/fatal"
	"github.com/twinit/byok-backup/internal/testing/logtest"
)

const (
	appID  = "4ab9f542-0305-4d62-94c9-69786fb5d1ec"
	entraA = "18a5c4b2-84a8-4acb-8db8-fc7073207415"
	entraB = "7c1e3f0a-1111-4222-8333-944455556666"
)

// env is one test's world: the Key Vault emulator, a fresh ByokSettings
// table in the package's Azurite, the real keyvault wrapper and the service.
type env struct {
	t       testing.TB
	emu     *kvemu.Emulator
	store   *TableStore
	wrapper *keyvault.Wrapper
	svc     *Service
	logs    *logtest.Buffer
	audit   *audit.Log
}

type envOptions struct {
	concurrency  int
	checkTimeout time.Duration
	maxRetries   int
	noOwnership  bool // BYOK_OWNERSHIP_TAG empty: the check off
	// validateBurst is the per-tenant validation burst; 0 = 1000, so tests
	// that validate often aren't throttled.
	validateBurst int
	now           func() time.Time
	backups       BackupCounter
}

// owners is the ownership tag value keys get from [env.vault]: the tenants
// these tests configure.
const owners = "acme pinned gone h1 h2 h3 h4 h5 down slow"

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	emu := kvemu.TestStart(t)
	creds, err := credential.New(credential.Options{Mode: credential.Emulator, AppClientID: appID, PlatformMode: credential.Emulator})
	if err != nil {
		t.Fatal(err)
	}
	tag := keywrap.DefaultOwnershipTag
	if o.noOwnership {
		tag = ""
	}
	if o.validateBurst == 0 {
		o.validateBurst = 1000
	}
	if o.maxRetries == 0 {
		o.maxRetries = -1 // no retries: faults show at once
	}
	w, err := keyvault.New(keyvault.Options{
		Credentials: creds, ApplicationID: appID, CAPEM: emu.CAPEM(),
		MaxRetries: o.maxRetries, RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 50 * time.Millisecond,
		TryTimeout: 5 * time.Second, DialTimeout: time.Second,
		OwnershipTag: tag,
	})
	if err != nil {
		t.Fatal(err)
	}
	logs := &logtest.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	auditLog := newTestAudit(t)
	svc, err := New(Options{
		Store: newTestStore(t), Validator: audit.NewValidator(w, auditLog, logger),
		VaultURLTemplate: emu.URLTemplate(), AppClientID: appID,
		Logger:             logger,
		MonitorConcurrency: o.concurrency, CheckTimeout: o.checkTimeout,
		OwnershipTag: tag, ValidateBurst: o.validateBurst, Now: o.now, Backups: o.backups,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, emu: emu, store: svc.store.(*TableStore), wrapper: w, svc: svc, logs: logs, audit: auditLog}
}

// vault creates a vault owned by Entra tenant entraA with an RSA key "k"
// of bits tagged for [owners], and grants the BYOK application get,
// wrapKey and unwrapKey.
func (e *env) vault(name string, bits int) (kid string) {
	e.t.Helper()
	must(e.t, e.emu.CreateVault(name, entraA, kvemu.AccessPolicy))
	kid, err := e.emu.CreateKey(name, "k", "RSA", bits, nil)
	must(e.t, err)
	e.tag(name, "k", owners)
	must(e.t, e.emu.Grant(name, kvemu.CustomerToken(appID, entraA), "get", "wrapKey", "unwrapKey"))
	return kid
}

// tag sets the ownership tag of the current version of key in vault.
func (e *env) tag(vault, key, tenants string) {
	e.t.Helper()
	must(e.t, e.emu.SetTags(vault, key, "", map[string]string{keywrap.DefaultOwnershipTag: tenants}))
}

func settingsFor(vault string) Settings {
	return Settings{KeyVaultName: vault, KeyName: "k", TenantID: entraA, FallbackToPlatformKey: true}
}

// must keeps the call sites short; the helper itself is shared.
var must = fatal.IfErr

func version(kid string) string { return kid[strings.LastIndexByte(kid, '/')+1:] }

var _ keywrap.Wrapper = (*keyvault.Wrapper)(nil)

func bg() context.Context { return context.Background() }
