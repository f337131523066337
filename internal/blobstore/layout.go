package blobstore

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/tenants"
)

// The streams of a backup: envelope stream 0 holds the records and stream
// 1 the files, each a complete stream of the assets codec. Their names are
// the blob directory of the chunks ([Layout.Chunk]) and the keys of
// catalog.Backup.Streams. The backup pipeline writes them; restores read
// them.
const (
	StreamRecords uint32 = 0
	StreamFiles   uint32 = 1
)

// StreamName returns the blob directory name of stream id.
func StreamName(id uint32) string {
	if id == StreamRecords {
		return "records"
	}
	return "files"
}

// ChunkIndexWidth is the zero padding of chunk indexes in blob names, so that
// listing order is index order (10 digits: up to 9,999,999,999 chunks).
const ChunkIndexWidth = 10

var (
	streamPattern  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)
	attemptPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

// Layout names the blobs of one backup:
//
//	<tenant>/<backupId>/manifest
//	<tenant>/<backupId>/chunks/<stream>/<index, 10 digits>
//
// With an Attempt, both sit one level down, under
// <tenant>/<backupId>/<attempt>/, so that a stale attempt that is still
// writing (its lease expired but it has not noticed yet) can never overwrite
// the chunks of the attempt that commits; the catalog row's ManifestBlob
// records which attempt committed. Only the tenant and backup ids are in
// clear, as API.md §3 requires.
type Layout struct {
	Tenant, BackupID, Attempt string
}

// NewLayout validates the parts; attempt may be empty.
func NewLayout(tenant, backupID, attempt string) (Layout, error) {
	switch {
	case !tenants.ValidID(tenant):
		return Layout{}, fmt.Errorf("blobstore: invalid tenant id %q", tenant)
	case !catalog.ValidID(backupID):
		return Layout{}, fmt.Errorf("blobstore: invalid backup id %q", backupID)
	case attempt != "" && !attemptPattern.MatchString(attempt):
		return Layout{}, fmt.Errorf("blobstore: invalid attempt id %q", attempt)
	}
	return Layout{Tenant: tenant, BackupID: backupID, Attempt: attempt}, nil
}

// BackupPrefix is the prefix of every blob of the backup, all attempts
// included: DeletePrefix on it removes the whole backup.
func (l Layout) BackupPrefix() string { return l.Tenant + "/" + l.BackupID + "/" }

// Prefix is the prefix of this attempt's blobs (BackupPrefix without an attempt).
func (l Layout) Prefix() string {
	if l.Attempt == "" {
		return l.BackupPrefix()
	}
	return l.BackupPrefix() + l.Attempt + "/"
}

// Manifest is the manifest's blob name.
func (l Layout) Manifest() string { return l.Prefix() + "manifest" }

// RewrapManifest is the blob name of the manifest written by the backup's
// n-th re-wrap (n ≥ 1; FORMAT.md §10): beside the original, never over it,
// so both exist until the catalog row names the new one. The number is
// fixed-width and the name does not start with "manifest", so no manifest
// name is a prefix of another and DeletePrefix on one deletes only it.
func (l Layout) RewrapManifest(n int) string {
	if n < 1 || n > MaxRewraps {
		panic(fmt.Sprintf("blobstore: internal error: re-wrap number %d", n))
	}
	return fmt.Sprintf("%srewrap-manifest-%06d", l.Prefix(), n)
}

// MaxRewraps is the most re-wraps one backup can have (RewrapManifest's width).
const MaxRewraps = 999999

// ManifestOf returns the manifest blob name of re-wrap n, n = 0 being the
// backup's own manifest.
func (l Layout) ManifestOf(n int) string {
	if n == 0 {
		return l.Manifest()
	}
	return l.RewrapManifest(n)
}

// ChunkPrefix is the prefix of one stream's chunks.
func (l Layout) ChunkPrefix(stream string) string {
	if !streamPattern.MatchString(stream) {
		// Stream names are constants of the backup format, never input.
		panic(fmt.Sprintf("blobstore: internal error: invalid stream name %q", stream))
	}
	return l.Prefix() + "chunks/" + stream + "/"
}

// Chunk is the blob name of chunk index (≥ 0) of stream.
func (l Layout) Chunk(stream string, index int64) string {
	if index < 0 {
		panic(fmt.Sprintf("blobstore: internal error: negative chunk index %d", index))
	}
	return fmt.Sprintf("%s%0*d", l.ChunkPrefix(stream), ChunkIndexWidth, index)
}

// ManifestLayout returns the layout of the attempt whose manifest a
// catalog row names: manifestBlob must be exactly ManifestOf(rewraps) of
// a layout of tenant and backupID (the original manifest, or the
// re-wrapped one the row's count of re-wraps names, FORMAT.md §10).
func ManifestLayout(tenant, backupID, manifestBlob string, rewraps int) (Layout, error) {
	base, err := NewLayout(tenant, backupID, "")
	if err != nil {
		return Layout{}, err
	}
	rest, ok := strings.CutPrefix(manifestBlob, base.BackupPrefix())
	if !ok {
		return Layout{}, fmt.Errorf("manifest blob %q is not under %s", manifestBlob, base.BackupPrefix())
	}
	if rewraps < 0 || rewraps > MaxRewraps {
		return Layout{}, fmt.Errorf("re-wrap count %d out of range", rewraps)
	}
	name := "manifest"
	if rewraps > 0 {
		name = fmt.Sprintf("rewrap-manifest-%06d", rewraps)
	}
	attempt, ok := strings.CutSuffix(rest, name)
	if !ok {
		return Layout{}, fmt.Errorf("manifest blob %q does not end in %s", manifestBlob, name)
	}
	l, err := NewLayout(tenant, backupID, strings.TrimSuffix(attempt, "/"))
	if err != nil || l.ManifestOf(rewraps) != manifestBlob {
		return Layout{}, fmt.Errorf("manifest blob %q is not a layout name: %v", manifestBlob, err)
	}
	return l, nil
}
