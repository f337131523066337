package byok

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/twinit/byok-backup/internal/audit"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// Options configures a [Service]. Store, Validator, VaultURLTemplate,
// AppClientID and Logger are required.
type Options struct {
	Store     Store
	Validator Validator
	// VaultURLTemplate is KEYVAULT_URL_TEMPLATE.
	VaultURLTemplate string
	// AppClientID is BYOK_APP_CLIENT_ID, shown to customers as the
	// application to grant.
	AppClientID string
	Logger      *slog.Logger
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// MonitorConcurrency bounds the tenants checked at once
	// (BYOK_MONITOR_CONCURRENCY); 0 means 16.
	MonitorConcurrency int
	// CheckTimeout bounds one tenant's check in the monitor; 0 means 20 s.
	CheckTimeout time.Duration
	// MonitorBudget bounds a whole monitor run, below the host's
	// functionTimeout; 0 means 4 minutes.
	MonitorBudget time.Duration
	// OwnershipTag is BYOK_OWNERSHIP_TAG, shown in the status as the tag
	// the customer must set (API.md §5); "" when the check is off. The
	// check itself is the key wrapper's.
	OwnershipTag string
	// ValidateBurst and ValidateEvery limit key validations (PUT and
	// validate) per tenant; 0 means DefaultValidateBurst and
	// DefaultValidateEvery.
	ValidateBurst int
	ValidateEvery time.Duration
	// Backups, when set, counts the tenant's completed backups by what
	// wraps them: the status's "backups" (API.md §7), and the monitor's
	// log of backups on older key versions.
	Backups BackupCounter
}

// BackupCounter counts a tenant's completed backups by key; currentKeyID
// is the configured key's current version ("" when BYOK is off).
type BackupCounter interface {
	CountBackups(ctx context.Context, tenant, currentKeyID string) (BackupCounts, error)
}

// BackupCountFunc adapts a function to [BackupCounter].
type BackupCountFunc func(ctx context.Context, tenant, currentKeyID string) (BackupCounts, error)

func (f BackupCountFunc) CountBackups(ctx context.Context, tenant, currentKeyID string) (BackupCounts, error) {
	return f(ctx, tenant, currentKeyID)
}

// BackupCounts is the status's "backups": completed backups whose data key
// the customer's key wraps, the platform key wraps, and the customer's
// key but not its current version (what a re-wrap would change).
type BackupCounts struct {
	Customer          int64 `json:"customer"`
	Platform          int64 `json:"platform"`
	OlderCustomerKeys int64 `json:"olderCustomerKeys"`
}

// Service configures, validates and watches tenants' customer keys.
type Service struct {
	store       Store
	validator   Validator
	template    string
	appID       string
	log         *slog.Logger
	now         func() time.Time
	concurrency int
	checkTO     time.Duration
	budget      time.Duration
	tag         string
	limiter     *tenantLimiter
	backups     BackupCounter
}

// New returns a Service.
func New(opts Options) (*Service, error) {
	switch {
	case opts.Store == nil:
		return nil, errors.New("byok: Options.Store is required")
	case opts.Validator == nil:
		return nil, errors.New("byok: Options.Validator is required")
	case opts.Logger == nil:
		return nil, errors.New("byok: Options.Logger is required")
	case opts.AppClientID == "":
		return nil, errors.New("byok: Options.AppClientID (BYOK_APP_CLIENT_ID) is required")
	case opts.MonitorConcurrency < 0 || opts.CheckTimeout < 0 || opts.MonitorBudget < 0:
		return nil, errors.New("byok: monitor limits must not be negative")
	case opts.ValidateBurst < 0 || opts.ValidateEvery < 0:
		return nil, errors.New("byok: validation limits must not be negative")
	}
	// Fail at startup, not on the first customer's request, when the
	// template is unusable.
	if _, err := keywrap.VaultURL(opts.VaultURLTemplate, "probe"); err != nil {
		return nil, fmt.Errorf("byok: %w", err)
	}
	s := &Service{
		store: opts.Store, validator: opts.Validator,
		template: opts.VaultURLTemplate, appID: opts.AppClientID, log: opts.Logger,
		now: opts.Now, concurrency: opts.MonitorConcurrency, checkTO: opts.CheckTimeout, budget: opts.MonitorBudget,
		tag: opts.OwnershipTag, backups: opts.Backups,
	}
	burst, every := opts.ValidateBurst, opts.ValidateEvery
	if burst == 0 {
		burst = DefaultValidateBurst
	}
	if every == 0 {
		every = DefaultValidateEvery
	}
	lim, err := newTenantLimiter(every, burst, DefaultLimitedTenants)
	if err != nil {
		return nil, fmt.Errorf("byok: %w", err)
	}
	s.limiter = lim
	if s.now == nil {
		s.now = time.Now
	}
	if s.concurrency == 0 {
		s.concurrency = 16
	}
	if s.checkTO == 0 {
		s.checkTO = 20 * time.Second
	}
	if s.budget == 0 {
		s.budget = 4 * time.Minute
	}
	return s, nil
}

func (s *Service) clock() time.Time { return s.now().UTC() }

// ref builds the key reference of tenant's settings set. The vault URL
// comes only from the template and the validated vault name; the tenant is
// the owner the key's ownership tag must list.
func (s *Service) ref(tenant string, set Settings) (keywrap.Ref, error) {
	u, err := keywrap.VaultURL(s.template, set.KeyVaultName)
	if err != nil {
		return keywrap.Ref{}, err
	}
	return keywrap.Ref{Source: keywrap.Customer, VaultURL: u, KeyName: set.KeyName, Version: set.KeyVersion,
		TenantID: set.TenantID, Owner: tenant}, nil
}

// Validation is one validation's outcome; Err is nil when every check
// passed (never a typed nil).
type Validation struct {
	Checks  []CheckResult
	KeyID   string
	KeyType string
	KeySize int
	Err     error
}

// validate runs the checks on set, scoped to tenant for the audit row.
func (s *Service) validate(ctx context.Context, tenant string, set Settings) (Validation, error) {
	ref, err := s.ref(tenant, set)
	if err != nil {
		return Validation{}, err
	}
	res := s.validator.Validate(audit.WithScope(ctx, audit.Scope{Tenant: tenant}), ref)
	v := Validation{Checks: res.Checks, KeyID: res.KeyID, KeyType: res.KeyType, KeySize: res.KeySize}
	if !res.OK {
		v.Err = errcode.New(errcode.KeyValidationFailed, "The key failed validation.")
		if res.Err != nil {
			v.Err = res.Err
		}
	}
	return v, nil
}

// Status returns the tenant's status document.
func (s *Service) Status(ctx context.Context, tenant string) (Status, error) {
	if err := checkTenant(tenant); err != nil {
		return Status{}, err
	}
	rec, err := s.store.Get(ctx, tenant)
	if err != nil {
		return Status{}, err
	}
	st := s.status(rec)
	if s.backups != nil {
		c, err := s.backups.CountBackups(ctx, tenant, rec.KeyID)
		if err != nil {
			return Status{}, fmt.Errorf("failed to count the tenant's backups: %w", err)
		}
		st.Backups = &c
	}
	return st, nil
}

// Configure validates the key that set names and, when every check passes,
// enables BYOK with it. ifMatch is the caller's If-Match header ("" for
// none). A failed validation returns a *[ValidationError] and changes
// nothing; a lost race returns Conflict.
func (s *Service) Configure(ctx context.Context, tenant string, set Settings, ifMatch string) (Status, error) {
	if err := checkTenant(tenant); err != nil {
		return Status{}, err
	}
	if err := set.Check(); err != nil {
		return Status{}, err
	}
	rec, err := s.store.Get(ctx, tenant)
	if err != nil {
		return Status{}, err
	}
	if err := precondition(ifMatch, rec); err != nil {
		return Status{}, err
	}
	if err := s.throttle(tenant); err != nil {
		return Status{}, err
	}
	v, err := s.validate(ctx, tenant, set)
	if err != nil {
		return Status{}, err
	}
	if v.Err != nil {
		return Status{}, &ValidationError{Err: s.keyError(tenant, set, v.Err), Checks: v.Checks}
	}
	now := s.clock()
	stored, err := s.adminWrite(ctx, rec, func(r *Record) {
		if !r.Enabled || r.EnabledAt.IsZero() {
			r.EnabledAt = now
		}
		r.Enabled, r.Settings = true, set
		r.KeyID, r.KeyType, r.KeySize = v.KeyID, v.KeyType, v.KeySize
		r.LastCheck = &Check{At: now, OK: true}
		r.DegradedSince = time.Time{}
	})
	if err != nil {
		return Status{}, err
	}
	s.log.InfoContext(ctx, "byok enabled", "tenant", tenant, "keyId", stored.KeyID)
	return s.status(stored), nil
}

// Disable turns BYOK off. Backups made with the customer key keep
// referencing it; nothing is deleted.
func (s *Service) Disable(ctx context.Context, tenant, ifMatch string) (Status, error) {
	if err := checkTenant(tenant); err != nil {
		return Status{}, err
	}
	rec, err := s.store.Get(ctx, tenant)
	if err != nil {
		return Status{}, err
	}
	if err := precondition(ifMatch, rec); err != nil {
		return Status{}, err
	}
	if !rec.Enabled {
		return s.status(rec), nil // already off: nothing to write
	}
	stored, err := s.adminWrite(ctx, rec, func(r *Record) {
		*r = Record{Tenant: r.Tenant, Version: r.Version, RowETag: r.RowETag}
	})
	if err != nil {
		return Status{}, err
	}
	s.log.InfoContext(ctx, "byok disabled", "tenant", tenant)
	return s.status(stored), nil
}

// ValidateResult is the answer of ByokValidate.
type ValidateResult struct {
	OK     bool            `json:"ok"`
	Checks []CheckResult   `json:"checks"`
	Error  *errcode.Detail `json:"error,omitempty"`
}

// Validate validates set, or the stored settings when set is nil, and
// changes nothing. With no set and nothing stored it returns NotFound.
func (s *Service) Validate(ctx context.Context, tenant string, set *Settings) (ValidateResult, error) {
	if err := checkTenant(tenant); err != nil {
		return ValidateResult{}, err
	}
	if set == nil {
		rec, err := s.store.Get(ctx, tenant)
		if err != nil {
			return ValidateResult{}, err
		}
		if !rec.Enabled {
			return ValidateResult{}, errcode.New(errcode.NotFound,
				"Tenant %s has no BYOK settings to validate: send keyVaultName, keyName and tenantId in the request body.", tenant)
		}
		set = &rec.Settings
	} else if err := set.Check(); err != nil {
		return ValidateResult{}, err
	}
	if err := s.throttle(tenant); err != nil {
		return ValidateResult{}, err
	}
	v, err := s.validate(ctx, tenant, *set)
	if err != nil {
		return ValidateResult{}, err
	}
	res := ValidateResult{OK: v.Err == nil, Checks: v.Checks}
	if res.Checks == nil {
		res.Checks = []CheckResult{}
	}
	if v.Err != nil {
		e := s.keyError(tenant, *set, v.Err)
		res.Error = &errcode.Detail{Code: e.Code, Message: e.Message}
	}
	return res, nil
}

// adminWrite applies change to rec as a new admin version and stores it.
// A conditional write that loses to a system write (monitor, key use: the
// version is unchanged) is retried on the fresh row; one that loses to
// another admin is a Conflict.
func (s *Service) adminWrite(ctx context.Context, rec Record, change func(*Record)) (Record, error) {
	version := rec.Version
	for range 5 {
		next := rec
		change(&next)
		next.Version = version + 1
		stored, err := s.store.Put(ctx, next)
		if !errors.Is(err, ErrConflict) {
			return stored, err
		}
		if rec, err = s.store.Get(ctx, rec.Tenant); err != nil {
			return Record{}, err
		}
		if rec.Version != version {
			return Record{}, conflict(rec.Tenant)
		}
	}
	return Record{}, conflict(rec.Tenant)
}

// systemWrite applies change to the tenant's current row, retrying on
// conflicts. change returns false to leave the row alone (for example
// because an admin reconfigured the key meanwhile).
func (s *Service) systemWrite(ctx context.Context, tenant string, change func(*Record) bool) (Record, bool, error) {
	for range 5 {
		rec, err := s.store.Get(ctx, tenant)
		if err != nil {
			return Record{}, false, err
		}
		next := rec
		if !change(&next) {
			return rec, false, nil
		}
		stored, err := s.store.Put(ctx, next)
		if !errors.Is(err, ErrConflict) {
			return stored, err == nil, err
		}
	}
	return Record{}, false, fmt.Errorf("failed to update BYOK state of %q: too many concurrent writes", tenant)
}

func conflict(tenant string) error {
	return errcode.New(errcode.Conflict,
		"The BYOK settings of tenant %s were changed by someone else meanwhile: reload them and try again.", tenant)
}

// ETag is the entity tag of a record as clients see it: the admin version.
func ETag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// precondition checks an If-Match header against rec: "*" needs stored
// settings, otherwise one of the listed tags must be rec's (`"0"` matches
// a tenant that never configured BYOK).
func precondition(ifMatch string, rec Record) error {
	ifMatch = strings.TrimSpace(ifMatch)
	if ifMatch == "" {
		return nil
	}
	for _, tag := range strings.Split(ifMatch, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == "*" && rec.stored() || tag == ETag(rec.Version) {
			return nil
		}
	}
	return errcode.New(errcode.Conflict,
		"The BYOK settings of tenant %s changed since you read them (If-Match does not match the current ETag %s): reload them and try again.",
		rec.Tenant, ETag(rec.Version))
}
