package byok

import (
	"context"
	"crypto/rsa"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/audit"
	"github.com/twinit/byok-backup/internal/credential"
	"github.com/twinit/byok-backup/internal/devstack/kvemu"
	"github.com/twinit/byok-backup/internal/keywrap"
	"github.com/twinit/byok-backup/internal/keywrap/keyvault"
	keywrapmem "github.com/twinit/byok-backup/internal/keywrap/mem"
	"github.com/twinit/byok-backup/internal/testing/fatal"
	"github.com/twinit/byok-backup/internal/testing/logtest"
)

const (
	appID  = "4ab9f542-0305-4d62-94c9-69786fb5d1ec"
	entraA = "18a5c4b2-84a8-4acb-8db8-fc7073207415"
	entraB = "7c1e3f0a-1111-4222-8333-944455556666"
)

// env is one test's world: the Key Vault emulator and the real keyvault
// wrapper (or, with inMemoryKeys, the in-memory wrapper keywrap/mem, held
// to the adapter by keywrap/wraptest), an in-memory ByokSettings store,
// a fresh KeyAudit table in the package's Azurite, and the service.
type env struct {
	t       testing.TB
	emu     *kvemu.Emulator // nil with inMemoryKeys
	kv      keyControl      // the emulator or the in-memory wrapper
	store   *MemStore
	wrapper keywrap.Wrapper
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
	// inMemoryKeys runs the service on keywrap/mem instead of the
	// emulator: for tests of the service's logic that need no grants,
	// sign-ins, faults or request log.
	inMemoryKeys bool
	backups      BackupCounter
	// oneRSAKey gives every emulated key the same RSA key material (each
	// vault and key is still its own): benchmarks with a thousand vaults
	// would otherwise spend minutes generating keys.
	oneRSAKey *rsa.PrivateKey
}

// keyControl changes keys: the methods the emulator and keywrap/mem share.
type keyControl interface {
	CreateKey(vaultName, name, kty string, size int, ops []string) (string, error)
	RotateKey(vaultName, name string) (string, error)
	SetTags(vaultName, name, version string, tags map[string]string) error
	SetEnabled(vaultName, name, version string, enabled bool) error
	SetKeyOps(vaultName, name, version string, ops []string) error
}

// owners is the ownership tag value keys get from [env.vault]: the tenants
// these tests configure.
const owners = "acme pinned gone h1 h2 h3 h4 h5 down slow"

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	tag := keywrap.DefaultOwnershipTag
	if o.noOwnership {
		tag = ""
	}
	if o.validateBurst == 0 {
		o.validateBurst = 1000
	}
	e := &env{t: t}
	var urlTemplate string
	if o.inMemoryKeys {
		m := keywrapmem.New(keywrapmem.Options{OwnershipTag: tag})
		e.kv, e.wrapper, urlTemplate = m, m, keywrapmem.URLTemplate
	} else {
		if o.oneRSAKey != nil {
			emu, err := kvemu.Start(kvemu.Options{RSAKey: func(int) (*rsa.PrivateKey, error) { return o.oneRSAKey, nil }})
			must(t, err)
			t.Cleanup(func() { _ = emu.Close() })
			e.emu = emu
		} else {
			e.emu = kvemu.TestStart(t)
		}
		e.kv, urlTemplate = e.emu, e.emu.URLTemplate()
		e.wrapper = e.emulatorWrapper(o, tag)
	}
	logs := &logtest.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	auditLog := newTestAudit(t)
	svc, err := New(Options{
		Store: newTestStore(t), Validator: audit.NewValidator(e.wrapper, auditLog, logger),
		VaultURLTemplate: urlTemplate, AppClientID: appID,
		Logger:             logger,
		MonitorConcurrency: o.concurrency, CheckTimeout: o.checkTimeout,
		OwnershipTag: tag, ValidateBurst: o.validateBurst, Now: o.now, Backups: o.backups,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.store, e.svc, e.logs, e.audit = svc.store.(*MemStore), svc, logs, auditLog
	return e
}

// emulatorWrapper is the keyvault wrapper over the emulator, wired as
// production is, with o's retries and the ownership tag.
func (e *env) emulatorWrapper(o envOptions, tag string) *keyvault.Wrapper {
	t := e.t
	t.Helper()
	creds, err := credential.New(credential.Options{Mode: credential.Emulator, AppClientID: appID, PlatformMode: credential.Emulator})
	if err != nil {
		t.Fatal(err)
	}
	if o.maxRetries == 0 {
		o.maxRetries = -1 // no retries: faults show at once
	}
	w, err := keyvault.New(keyvault.Options{
		Credentials: creds, ApplicationID: appID, CAPEM: e.emu.CAPEM(),
		MaxRetries: o.maxRetries, RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 50 * time.Millisecond,
		TryTimeout: 5 * time.Second, DialTimeout: time.Second,
		OwnershipTag: tag,
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// vault creates a vault owned by Entra tenant entraA with an RSA key "k"
// of bits tagged for [owners], and grants the BYOK application get,
// wrapKey and unwrapKey.
func (e *env) vault(name string, bits int) (kid string) {
	e.t.Helper()
	if e.emu == nil {
		e.kv.(*keywrapmem.Wrapper).CreateVault(name)
	} else {
		must(e.t, e.emu.CreateVault(name, entraA, kvemu.AccessPolicy))
	}
	kid, err := e.kv.CreateKey(name, "k", "RSA", bits, nil)
	must(e.t, err)
	e.tag(name, "k", owners)
	if e.emu != nil {
		must(e.t, e.emu.Grant(name, kvemu.CustomerToken(appID, entraA), "get", "wrapKey", "unwrapKey"))
	}
	return kid
}

// tag sets the ownership tag of the current version of key in vault.
func (e *env) tag(vault, key, tenants string) {
	e.t.Helper()
	must(e.t, e.kv.SetTags(vault, key, "", map[string]string{keywrap.DefaultOwnershipTag: tenants}))
}

func settingsFor(vault string) Settings {
	return Settings{KeyVaultName: vault, KeyName: "k", TenantID: entraA, FallbackToPlatformKey: true}
}

// must keeps the call sites short; the helper itself is shared.
var must = fatal.IfErr

func version(kid string) string { return kid[strings.LastIndexByte(kid, '/')+1:] }

var _ keywrap.Wrapper = (*keyvault.Wrapper)(nil)

func bg() context.Context { return context.Background() }
