package aztable

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// props collects entity properties with their EDM types; zero times and
// empty strings are left out so an absent value reads back as zero.
type props map[string]any

func (p props) str(name, v string) {
	if v != "" {
		p[name] = v
	}
}

func (p props) time(name string, t time.Time) {
	if !t.IsZero() {
		p[name] = aztables.EDMDateTime(t.UTC())
	}
}

func (p props) int64(name string, v int64) { p[name] = aztables.EDMInt64(v) }

func (p props) detail(prefix string, d *errcode.Detail) {
	if d != nil {
		p[prefix+"Code"] = string(d.Code)
		p[prefix+"Message"] = d.Message
	}
}

func (p props) getStr(name string) string {
	s, _ := p[name].(string)
	return s
}

func (p props) getTime(name string) time.Time {
	if t, ok := p[name].(aztables.EDMDateTime); ok {
		return time.Time(t).UTC()
	}
	return time.Time{}
}

// getInt64 accepts every numeric shape the service may return: Edm.Int64
// (annotated), or a plain JSON number (Int32 or Double).
func (p props) getInt64(name string) int64 {
	switch v := p[name].(type) {
	case aztables.EDMInt64:
		return int64(v)
	case int32:
		return int64(v)
	case float64:
		return int64(v)
	}
	return 0
}

func (p props) getBool(name string) bool {
	b, _ := p[name].(bool)
	return b
}

func (p props) getDetail(prefix string) *errcode.Detail {
	code := p.getStr(prefix + "Code")
	if code == "" {
		return nil
	}
	return &errcode.Detail{Code: errcode.Code(code), Message: p.getStr(prefix + "Message")}
}

// putJob stores the part every job row shares, under the same property
// names for every kind.
func (p props) putJob(j *catalog.Job) {
	p.time("RequestedAt", j.RequestedAt)
	p.time("StartedAt", j.StartedAt)
	p.time("CompletedAt", j.CompletedAt)
	p.detail("Error", j.Error)
	p.str("Attempt", j.Attempt)
	p.int64("Attempts", int64(j.Attempts))
	p.time("HeartbeatAt", j.HeartbeatAt)
	p.time("ResentAt", j.ResentAt)
}

// getJob reads what putJob stored; etag is the response's, or "" to take
// the entity's own (a listed row).
func (p props) getJob(e *aztables.EDMEntity, etag string) catalog.Job {
	if etag == "" {
		etag = e.ETag
	}
	return catalog.Job{
		RequestedAt: p.getTime("RequestedAt"), StartedAt: p.getTime("StartedAt"), CompletedAt: p.getTime("CompletedAt"),
		Error:   p.getDetail("Error"),
		Attempt: p.getStr("Attempt"), Attempts: int(p.getInt64("Attempts")),
		HeartbeatAt: p.getTime("HeartbeatAt"),
		ResentAt:    p.getTime("ResentAt"),
		ETag:        etag,
	}
}

func backupEntity(b *catalog.Backup) ([]byte, error) {
	p := props{}
	p.putJob(&b.Job)
	p.str("Status", string(b.Status))
	p.str("Reason", string(b.Reason))
	p.str("KeySource", string(b.KeySource))
	p.str("KeyId", b.KeyID)
	p.detail("Fallback", b.FallbackReason)
	p.int64("Records", b.Records)
	p.int64("Files", b.Files)
	p.int64("Bytes", b.Bytes)
	p.int64("StoredBytes", b.StoredBytes)
	p.int64("Chunks", b.Chunks)
	if b.Progress != (catalog.BackupProgress{}) {
		p.int64("ProgressRecords", b.Progress.Records)
		p.int64("ProgressFiles", b.Progress.Files)
		p.int64("ProgressBytes", b.Progress.Bytes)
		if b.Progress.TotalKnown {
			p.int64("ProgressTotalBytes", b.Progress.TotalBytes)
		}
	}
	p.str("ManifestBlob", b.ManifestBlob)
	p.str("ManifestDigest", b.ManifestDigest)
	if len(b.Streams) > 0 {
		s, err := json.Marshal(b.Streams)
		if err != nil {
			return nil, fmt.Errorf("failed to encode streams: %w", err)
		}
		p["Streams"] = string(s)
	}
	p.str("EntraTenantId", b.EntraTenantID)
	p.time("FirstAttemptAt", b.FirstAttemptAt)
	p.detail("LastError", b.LastError)
	p.time("RetryAt", b.RetryAt)
	p.time("DeletedAt", b.DeletedAt)
	p.time("PurgeAfter", b.PurgeAfter)
	p.str("DeletedBy", b.DeletedBy)
	p.time("PurgeStartedAt", b.PurgeStartedAt)
	p.time("PurgedAt", b.PurgedAt)
	p.time("RewrappedAt", b.RewrappedAt)
	if len(b.PreviousKeyIDs) > 0 {
		s, err := json.Marshal(b.PreviousKeyIDs)
		if err != nil {
			return nil, fmt.Errorf("failed to encode previous key ids: %w", err)
		}
		p["PreviousKeyIds"] = string(s)
	}
	if b.Rewraps > 0 {
		p.int64("Rewraps", int64(b.Rewraps))
	}
	return json.Marshal(aztables.EDMEntity{
		Entity:     aztables.Entity{PartitionKey: b.Tenant, RowKey: b.BackupID},
		Properties: p,
	})
}

func decodeBackup(raw []byte, etag string) (*catalog.Backup, error) {
	var e aztables.EDMEntity
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("failed to decode backup entity: %w", err)
	}
	p := props(e.Properties)
	b := &catalog.Backup{
		BackupID: e.RowKey, Tenant: e.PartitionKey,
		Status: catalog.Status(p.getStr("Status")), Reason: catalog.Reason(p.getStr("Reason")),
		Job:       p.getJob(&e, etag),
		KeySource: keywrap.Source(p.getStr("KeySource")), KeyID: p.getStr("KeyId"),
		FallbackReason: p.getDetail("Fallback"),
		Records:        p.getInt64("Records"), Files: p.getInt64("Files"), Bytes: p.getInt64("Bytes"),
		StoredBytes: p.getInt64("StoredBytes"), Chunks: p.getInt64("Chunks"),
		ManifestBlob:   p.getStr("ManifestBlob"),
		ManifestDigest: p.getStr("ManifestDigest"),
		EntraTenantID:  p.getStr("EntraTenantId"),
		FirstAttemptAt: p.getTime("FirstAttemptAt"), LastError: p.getDetail("LastError"), RetryAt: p.getTime("RetryAt"),
		DeletedAt: p.getTime("DeletedAt"), PurgeAfter: p.getTime("PurgeAfter"), DeletedBy: p.getStr("DeletedBy"),
		PurgeStartedAt: p.getTime("PurgeStartedAt"), PurgedAt: p.getTime("PurgedAt"),
		RewrappedAt: p.getTime("RewrappedAt"), Rewraps: int(p.getInt64("Rewraps")),
		Progress: catalog.BackupProgress{Records: p.getInt64("ProgressRecords"), Files: p.getInt64("ProgressFiles"), Bytes: p.getInt64("ProgressBytes")},
	}
	if _, ok := p["ProgressTotalBytes"]; ok {
		b.Progress.TotalBytes, b.Progress.TotalKnown = p.getInt64("ProgressTotalBytes"), true
	}
	if s := p.getStr("PreviousKeyIds"); s != "" {
		if err := json.Unmarshal([]byte(s), &b.PreviousKeyIDs); err != nil {
			return nil, fmt.Errorf("failed to decode previous key ids of backup %s: %w", b.BackupID, err)
		}
	}
	if s := p.getStr("Streams"); s != "" {
		if err := json.Unmarshal([]byte(s), &b.Streams); err != nil {
			return nil, fmt.Errorf("failed to decode streams of backup %s: %w", b.BackupID, err)
		}
	}
	return b, nil
}

func restoreEntity(r *catalog.Restore) ([]byte, error) {
	p := props{}
	p.putJob(&r.Job)
	p.str("BackupId", r.BackupID)
	p.str("TargetTenant", r.TargetTenant)
	p.str("Mode", string(r.Mode))
	p["DryRun"] = r.DryRun
	p.str("State", string(r.State))
	p.int64("ProgressRecords", r.Progress.Records)
	p.int64("ProgressFiles", r.Progress.Files)
	p.int64("ProgressBytes", r.Progress.Bytes)
	return json.Marshal(aztables.EDMEntity{
		Entity:     aztables.Entity{PartitionKey: r.Tenant, RowKey: r.RestoreID},
		Properties: p,
	})
}

func decodeRestore(raw []byte, etag string) (*catalog.Restore, error) {
	var e aztables.EDMEntity
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("failed to decode restore entity: %w", err)
	}
	p := props(e.Properties)
	r := &catalog.Restore{
		RestoreID: e.RowKey, Tenant: e.PartitionKey,
		BackupID: p.getStr("BackupId"), TargetTenant: p.getStr("TargetTenant"),
		Mode: catalog.Mode(p.getStr("Mode")), DryRun: p.getBool("DryRun"),
		State: catalog.RestoreState(p.getStr("State")),
		Progress: catalog.Progress{
			Records: p.getInt64("ProgressRecords"), Files: p.getInt64("ProgressFiles"), Bytes: p.getInt64("ProgressBytes"),
		},
		Job: p.getJob(&e, etag),
	}
	return r, nil
}

func rewrapEntity(r *catalog.Rewrap) ([]byte, error) {
	p := props{}
	p.putJob(&r.Job)
	p.str("To", string(r.To))
	p["IncludePlatformBackups"] = r.IncludePlatformBackups
	p["DryRun"] = r.DryRun
	p.str("State", string(r.State))
	p.int64("ProgressTotal", r.Progress.Total)
	p.int64("ProgressDone", r.Progress.Done)
	p.int64("ProgressSkipped", r.Progress.Skipped)
	p.int64("ProgressFailed", r.Progress.Failed)
	if len(r.Failures) > 0 {
		f, err := json.Marshal(r.Failures)
		if err != nil {
			return nil, fmt.Errorf("failed to encode re-wrap failures: %w", err)
		}
		p["Failures"] = string(f)
	}
	return json.Marshal(aztables.EDMEntity{
		Entity:     aztables.Entity{PartitionKey: r.Tenant, RowKey: r.RewrapID},
		Properties: p,
	})
}

func decodeRewrap(raw []byte, etag string) (*catalog.Rewrap, error) {
	var e aztables.EDMEntity
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("failed to decode rewrap entity: %w", err)
	}
	p := props(e.Properties)
	r := &catalog.Rewrap{
		RewrapID: e.RowKey, Tenant: e.PartitionKey,
		To: keywrap.Source(p.getStr("To")), IncludePlatformBackups: p.getBool("IncludePlatformBackups"), DryRun: p.getBool("DryRun"),
		State: catalog.RewrapState(p.getStr("State")),
		Progress: catalog.RewrapProgress{Total: p.getInt64("ProgressTotal"), Done: p.getInt64("ProgressDone"),
			Skipped: p.getInt64("ProgressSkipped"), Failed: p.getInt64("ProgressFailed")},
		Job: p.getJob(&e, etag),
	}
	if s := p.getStr("Failures"); s != "" {
		if err := json.Unmarshal([]byte(s), &r.Failures); err != nil {
			return nil, fmt.Errorf("failed to decode failures of rewrap %s: %w", r.RewrapID, err)
		}
	}
	return r, nil
}
