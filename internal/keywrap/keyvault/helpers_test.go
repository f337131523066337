package keyvault

import (
	"context"
	"errors"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/twinit/byok-backup/internal/keywrap"
)

type nopCreds struct{}

func (nopCreds) For(keywrap.Ref) (azcore.TokenCredential, error) { return nil, errors.New("none") }

func errorsIsCanceled(err error) bool { return errors.Is(err, context.Canceled) }
