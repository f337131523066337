package audit

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keycheck"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// Scope is what a key use is for: the tenant and the backup or restore.
type Scope struct {
	Tenant    string
	BackupID  string
	RestoreID string
	// Rewrap marks the key uses of a re-wrap: recorded as rewrap-wrap and
	// rewrap-unwrap (API.md §7).
	Rewrap bool
}

type scopeKey struct{}

// WithScope returns ctx carrying s, read by the audited [Wrapper].
func WithScope(ctx context.Context, s Scope) context.Context {
	return context.WithValue(ctx, scopeKey{}, s)
}

// ScopeFrom returns the Scope in ctx (zero if none).
func ScopeFrom(ctx context.Context) Scope {
	s, _ := ctx.Value(scopeKey{}).(Scope)
	return s
}

// writeTimeout bounds one audit write; it runs even when the operation's
// context was cancelled, so that a key use is recorded anyway.
const writeTimeout = 10 * time.Second

// Wrapper is a keywrap.Wrapper that writes one audit row per Wrap and Unwrap
// of the wrapper it decorates. Inspect is not audited: it reads attributes
// and uses no key material.
type Wrapper struct {
	keywrap.Wrapper
	log    *Log
	logger *slog.Logger
}

var _ keywrap.Wrapper = (*Wrapper)(nil)

// NewWrapper decorates inner; logger nil = discard.
func NewWrapper(inner keywrap.Wrapper, log *Log, logger *slog.Logger) *Wrapper {
	return &Wrapper{Wrapper: inner, log: log, logger: orDiscard(logger)}
}

// Wrap wraps with the inner wrapper and records the outcome.
func (w *Wrapper) Wrap(ctx context.Context, ref keywrap.Ref, dataKey []byte) (keywrap.Wrapped, error) {
	start := time.Now()
	out, err := w.Wrapper.Wrap(ctx, ref, dataKey)
	keyID := ref.KeyID()
	if err == nil {
		keyID = out.KeyID
	}
	record(ctx, w.log, w.logger, Wrap, ref, keyID, err, time.Since(start))
	return out, err
}

// Unwrap unwraps with the inner wrapper and records the outcome.
func (w *Wrapper) Unwrap(ctx context.Context, ref keywrap.Ref, wr keywrap.Wrapped) ([]byte, error) {
	start := time.Now()
	out, err := w.Wrapper.Unwrap(ctx, ref, wr)
	keyID := wr.KeyID
	if keyID == "" {
		r := ref
		r.Version = wr.Version
		keyID = r.KeyID()
	}
	record(ctx, w.log, w.logger, Unwrap, ref, keyID, err, time.Since(start))
	return out, err
}

// Validator runs keycheck validations and records each as one "validate"
// row. Give it the undecorated wrapper: the round trip's wrap and unwrap are
// part of the validation, not uses of the key for data.
type Validator struct {
	w      keywrap.Wrapper
	log    *Log
	logger *slog.Logger
}

// NewValidator returns a Validator; logger nil = discard.
func NewValidator(w keywrap.Wrapper, log *Log, logger *slog.Logger) *Validator {
	return &Validator{w: w, log: log, logger: orDiscard(logger)}
}

// Validate runs keycheck.Validate for ref and records the outcome, with the
// tenant from ctx's [Scope].
func (v *Validator) Validate(ctx context.Context, ref keywrap.Ref) keycheck.Result {
	start := time.Now()
	res := keycheck.Validate(ctx, v.w, ref)
	keyID := res.KeyID
	if keyID == "" {
		keyID = ref.KeyID()
	}
	var err error
	if res.Err != nil {
		err = res.Err
	}
	record(ctx, v.log, v.logger, Validate, ref, keyID, err, time.Since(start))
	return res
}

func record(ctx context.Context, log *Log, logger *slog.Logger, op Operation, ref keywrap.Ref, keyID string, opErr error, d time.Duration) {
	s := ScopeFrom(ctx)
	if s.Rewrap {
		switch op {
		case Wrap:
			op = RewrapWrap
		case Unwrap:
			op = RewrapUnwrap
		}
	}
	outcome := OutcomeOK
	if opErr != nil {
		outcome = string(errcode.CodeOf(opErr))
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	e, err := log.Record(wctx, Entry{Tenant: s.Tenant, Operation: op, KeyID: keyID, KeySource: string(ref.Source),
		Outcome: outcome, BackupID: s.BackupID, RestoreID: s.RestoreID, Duration: d})
	if err != nil {
		logger.ErrorContext(ctx, "audit: failed to record key use", "op", string(op), "tenant", e.Tenant,
			"keyId", keyID, "outcome", outcome, "backupId", s.BackupID, "restoreId", s.RestoreID, "err", err)
	}
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return l
}
