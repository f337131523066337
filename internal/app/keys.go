package app

import (
	"fmt"
	"log/slog"

	"github.com/twinit/byok-backup/internal/config"
	"github.com/twinit/byok-backup/internal/credential"
	"github.com/twinit/byok-backup/internal/keywrap"
	"github.com/twinit/byok-backup/internal/keywrap/keyvault"
)

// keys is the Key Vault side of the wiring: the adapter and the platform
// key's reference (from PLATFORM_KEY_ID, an operator setting, never user input).
type keys struct {
	wrapper  *keyvault.Wrapper
	platform keywrap.Ref
}

func newKeys(cfg config.Config, logger *slog.Logger) (keys, error) {
	creds, err := credential.New(credential.Options{
		Mode:                      credential.Mode(cfg.ByokCredential),
		AppClientID:               cfg.ByokAppClientID,
		FederatedIdentityClientID: cfg.ByokFederatedIdentityClientID,
		ClientSecret:              cfg.ByokClientSecret,
		CertificatePath:           cfg.ByokClientCertificatePath,
		CertificatePassword:       cfg.ByokClientCertificatePassword,
		PlatformMode:              credential.Mode(cfg.PlatformCredential),
		PlatformIdentityClientID:  cfg.PlatformIdentityClientID,
	})
	if err != nil {
		return keys{}, fmt.Errorf("credentials: %w", err)
	}
	w, err := keyvault.New(keyvault.Options{
		Credentials:   creds,
		ApplicationID: cfg.ByokAppClientID,
		CAPEM:         cfg.KeyVaultCAPEM,
		Logger:        logger,
		OwnershipTag:  cfg.ByokOwnershipTag,
	})
	if err != nil {
		return keys{}, fmt.Errorf("key vault adapter: %w", err)
	}
	return keys{wrapper: w, platform: cfg.PlatformKey}, nil
}
