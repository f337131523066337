package catalog

import (
	"context"
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/twinit/byok-backup/internal/errcode"
)

// Store is the backup and restore catalog. Implementations: catalog/aztable
// (Table Storage) and catalog/mem (tests); both pass catalog/catalogtest.
//
// Writes are conditional: Create fails with ErrExists if the id is taken,
// Update with ErrConflict if the row's ETag changed since it was read. Both
// set the argument's ETag to the new version on success.
type Store interface {
	CreateBackup(ctx context.Context, b *Backup) error
	GetBackup(ctx context.Context, tenant, backupID string) (*Backup, error)
	UpdateBackup(ctx context.Context, b *Backup) error
	// ListBackups returns one page of a tenant's backups, newest first.
	ListBackups(ctx context.Context, tenant string, opts ListOptions) (BackupPage, error)
	// StaleBackups returns running backups, of every tenant, whose heartbeat
	// is older than before: their worker probably crashed.
	StaleBackups(ctx context.Context, before time.Time) ([]*Backup, error)
	// QueuedBackups returns queued backups, of every tenant, waiting since
	// before before ([Backup.WaitingSince]): their message was probably
	// never written.
	QueuedBackups(ctx context.Context, before time.Time) ([]*Backup, error)
	// ActiveBackup returns the tenant's newest backup that is queued or
	// running, or ErrNotFound if it has none (POST …/backups answers with
	// it instead of queuing another).
	ActiveBackup(ctx context.Context, tenant string) (*Backup, error)
	// ScanBackups calls fn with every backup of tenant, deleted and purged
	// included, in ascending id order, reading the partition page by page
	// (one listing, never held whole); an error from fn stops the scan and
	// is returned. The retention run reads a tenant with it.
	ScanBackups(ctx context.Context, tenant string, o ScanOptions, fn func(*Backup) error) error
	// BackupTenants calls fn with each tenant that has at least one backup
	// row, in ascending order, one small query per tenant.
	BackupTenants(ctx context.Context, fn func(tenant string) error) error

	CreateRestore(ctx context.Context, r *Restore) error
	GetRestore(ctx context.Context, tenant, restoreID string) (*Restore, error)
	UpdateRestore(ctx context.Context, r *Restore) error
	// ListRestores returns one page of a tenant's restores (the source
	// tenant's, as stored), newest first, with the same paging rules and
	// tokens as ListBackups.
	ListRestores(ctx context.Context, tenant string, opts ListOptions) (RestorePage, error)
	// StaleRestores returns running restores, of every tenant, whose
	// attempt last proved alive before before: the heartbeat, or the start
	// when the heartbeat was cleared for an immediate retry that never came.
	StaleRestores(ctx context.Context, before time.Time) ([]*Restore, error)
	// QueuedRestores returns queued restores, of every tenant, waiting
	// since before before ([Job.WaitingSince]).
	QueuedRestores(ctx context.Context, before time.Time) ([]*Restore, error)
}

// Page size limits for ListBackups and ListRestores.
const (
	DefaultMaxResults = 50
	MaxMaxResults     = 1000
)

// ListOptions select a page. The zero value is the first page of
// DefaultMaxResults.
type ListOptions struct {
	MaxResults        int    // ≤ 0 means DefaultMaxResults; above MaxMaxResults is clamped
	ContinuationToken string // from the previous BackupPage; empty for the first page
	// IncludeDeleted lists deleted and purged backups too (`?include=deleted`,
	// API.md §6); without it they are left out. Restores ignore it.
	IncludeDeleted bool
}

// Hidden reports whether a backup list without IncludeDeleted leaves b out.
func (o ListOptions) Hidden(b *Backup) bool {
	return !o.IncludeDeleted && (b.Status == StatusDeleted || b.Status == StatusPurged)
}

// PageSize is the effective page size.
func (o ListOptions) PageSize() int {
	switch {
	case o.MaxResults <= 0:
		return DefaultMaxResults
	case o.MaxResults > MaxMaxResults:
		return MaxMaxResults
	}
	return o.MaxResults
}

// BackupPage is one page of ListBackups.
type BackupPage struct {
	Backups []*Backup
	// ContinuationToken is empty on the last page.
	ContinuationToken string
}

// RestorePage is one page of ListRestores.
type RestorePage struct {
	Restores []*Restore
	// ContinuationToken is empty on the last page.
	ContinuationToken string
}

// tokenPrefix versions the token so its encoding can change later.
const tokenPrefix = "v1."

// EncodeToken makes the opaque continuation token that resumes a newest-first
// listing after (that is, older than) the backup lastID. Because ids sort by
// time, the page boundary stays put when newer backups are added meanwhile.
func EncodeToken(lastID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(tokenPrefix + lastID))
}

// DecodeToken returns the id a token resumes after; an empty token is the
// first page (""). Anything this package did not issue is ErrInvalidToken.
func DecodeToken(token string) (string, error) {
	if token == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", ErrInvalidToken
	}
	id, ok := strings.CutPrefix(string(raw), tokenPrefix)
	if !ok || !ValidID(id) {
		return "", ErrInvalidToken
	}
	return id, nil
}

// ParseListQuery reads API.md's list query (`maxResults`, 1 to
// MaxMaxResults, and an opaque `continuationToken`), shared by the Backups
// and Restores lists. A bad value is InvalidRequest.
func ParseListQuery(q url.Values) (ListOptions, error) {
	var opts ListOptions
	if v := q["maxResults"]; len(v) > 0 {
		n, err := strconv.Atoi(v[0])
		if len(v) > 1 || err != nil || n < 1 || n > MaxMaxResults {
			return opts, errcode.New(errcode.InvalidRequest, "maxResults must be a whole number from 1 to %d.", MaxMaxResults)
		}
		opts.MaxResults = n
	}
	if v := q["continuationToken"]; len(v) > 0 {
		if len(v) > 1 {
			return opts, ErrInvalidToken
		}
		if _, err := DecodeToken(v[0]); err != nil {
			return opts, err
		}
		opts.ContinuationToken = v[0]
	}
	if v := q["include"]; len(v) > 0 {
		if len(v) > 1 || v[0] != "deleted" {
			return opts, errcode.New(errcode.InvalidRequest, `include must be "deleted" (to list deleted and purged backups too).`)
		}
		opts.IncludeDeleted = true
	}
	return opts, nil
}
