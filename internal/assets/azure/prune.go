package azure

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/azerr"
)

// Pruner deletes the target tenant's records (or files) that a backup
// lacks, for a `replace` restore, with memory independent of the tenant's
// size: it merges the backup's keys, fed in ascending [CompareKeys] order
// through [Pruner.Keep], with the target's listing, which the services
// return in the same order, one page at a time. A target key smaller than
// the current backup key is not in the backup and is deleted.
//
// Both sequences are checked to ascend strictly; if either doesn't, the
// Pruner stops with [ErrOutOfOrder] before deleting anything it can't
// prove absent from the backup. Keep may be called before or after the
// record or file is written: listings are monotonic, so a key written
// after the merge passed it is never listed again.
type Pruner struct {
	what    string
	list    func(context.Context) ([]string, bool, error)
	del     func(context.Context, []string) error
	batch   int
	page    []string
	pos     int
	more    bool
	started bool
	lastT   string
	haveT   bool
	lastB   string
	haveB   bool
	pending []string
	deleted int64
}

// Holds reads one key of tenant's records and one of its files. A missing
// table or container holds nothing. Pages may come back empty with a
// continuation (the table service does that), so it follows them.
func (s *Store) Holds(ctx context.Context, tenant string) (records, files bool, err error) {
	if err := assets.CheckTenant(tenant); err != nil {
		return false, false, err
	}
	rp := s.table.NewListEntitiesPager(&aztables.ListEntitiesOptions{
		Filter: to.Ptr(partitionFilter(tenant)), Select: to.Ptr("RowKey"), Top: to.Ptr(int32(1)),
	})
	for !records && rp.More() {
		page, err := rp.NextPage(ctx)
		if isTableMissing(err) {
			break
		}
		if err != nil {
			return false, false, fmt.Errorf("failed to read records of tenant %q: %w", tenant, azerr.Redact(err))
		}
		records = len(page.Entities) > 0
	}
	fp := s.files.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: to.Ptr(prefix(tenant)), MaxResults: to.Ptr(int32(1))})
	for !files && fp.More() {
		page, err := fp.NextPage(ctx)
		if bloberror.HasCode(err, bloberror.ContainerNotFound) {
			break
		}
		if err != nil {
			return false, false, fmt.Errorf("failed to list files of tenant %q: %w", tenant, azerr.Redact(err))
		}
		files = len(page.Segment.BlobItems) > 0
	}
	return records, files, nil
}

// NewRecordPruner returns a Pruner over tenant's records.
func (s *Store) NewRecordPruner(tenant string) (assets.Pruner, error) {
	if err := assets.CheckTenant(tenant); err != nil {
		return nil, err
	}
	pager := s.table.NewListEntitiesPager(&aztables.ListEntitiesOptions{
		Filter: to.Ptr(partitionFilter(tenant)),
		Select: to.Ptr("PartitionKey,RowKey"),
		Top:    to.Ptr(s.opts.RecordPageSize),
	})
	list := func(ctx context.Context) ([]string, bool, error) {
		if !pager.More() {
			return nil, false, nil
		}
		page, err := pager.NextPage(ctx)
		if err != nil {
			if isTableMissing(err) {
				return nil, false, nil
			}
			return nil, false, fmt.Errorf("failed to list records of tenant %q: %w", tenant, azerr.Redact(err))
		}
		keys := make([]string, 0, len(page.Entities))
		for _, raw := range page.Entities {
			var e struct{ PartitionKey, RowKey string }
			if err := json.Unmarshal(raw, &e); err != nil {
				return nil, false, fmt.Errorf("failed to parse a record key of tenant %q: %w", tenant, err)
			}
			if e.PartitionKey != tenant {
				return nil, false, fmt.Errorf("listing for tenant %q returned partition %q", tenant, e.PartitionKey)
			}
			keys = append(keys, e.RowKey)
		}
		return keys, pager.More(), nil
	}
	return &Pruner{what: "records", list: list, del: s.deleteRecords(tenant), batch: s.opts.BatchSize}, nil
}

// NewFilePruner returns a Pruner over tenant's files (paths).
func (s *Store) NewFilePruner(tenant string) (assets.Pruner, error) {
	if err := assets.CheckTenant(tenant); err != nil {
		return nil, err
	}
	pre := prefix(tenant)
	pager := s.files.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{
		Prefix: to.Ptr(pre), MaxResults: to.Ptr(s.opts.FilePageSize),
	})
	list := func(ctx context.Context) ([]string, bool, error) {
		if !pager.More() {
			return nil, false, nil
		}
		page, err := pager.NextPage(ctx)
		if err != nil {
			if bloberror.HasCode(err, bloberror.ContainerNotFound) {
				return nil, false, nil
			}
			return nil, false, fmt.Errorf("failed to list files of tenant %q: %w", tenant, azerr.Redact(err))
		}
		paths := make([]string, 0, len(page.Segment.BlobItems))
		for _, it := range page.Segment.BlobItems {
			f, err := fileFromItem(it, pre)
			if err != nil {
				return nil, false, err
			}
			paths = append(paths, f.Path)
		}
		return paths, pager.More(), nil
	}
	del := func(ctx context.Context, paths []string) error {
		for _, p := range paths {
			if err := s.DeleteFile(ctx, tenant, p); err != nil {
				return err
			}
		}
		return nil
	}
	return &Pruner{what: "files", list: list, del: del, batch: s.opts.BatchSize}, nil
}

// Keep declares key present in the backup and deletes the target's keys
// below it that weren't kept. Keys must ascend strictly.
func (p *Pruner) Keep(ctx context.Context, key string) error {
	if p.haveB && assets.CompareKeys(p.lastB, key) >= 0 {
		return fmt.Errorf("backup %s: %s after %s: %w", p.what, assets.Tag(key), assets.Tag(p.lastB), assets.ErrOutOfOrder)
	}
	p.lastB, p.haveB = key, true
	for {
		t, ok, err := p.peek(ctx)
		if err != nil || !ok {
			return err
		}
		c := assets.CompareKeys(t, key)
		if c > 0 {
			return nil
		}
		if err := p.consume(t); err != nil {
			return err
		}
		if c == 0 {
			return nil
		}
		if err := p.drop(ctx, t); err != nil {
			return err
		}
	}
}

// Finish deletes every target key after the last kept one and returns the
// number deleted in all.
func (p *Pruner) Finish(ctx context.Context) (int64, error) {
	for {
		t, ok, err := p.peek(ctx)
		if err != nil {
			return p.deleted, err
		}
		if !ok {
			break
		}
		if err := p.consume(t); err != nil {
			return p.deleted, err
		}
		if err := p.drop(ctx, t); err != nil {
			return p.deleted, err
		}
	}
	return p.deleted, p.flush(ctx)
}

// peek returns the next target key, fetching pages as needed.
func (p *Pruner) peek(ctx context.Context) (string, bool, error) {
	for p.pos >= len(p.page) {
		if p.started && !p.more {
			return "", false, nil
		}
		page, more, err := p.list(ctx)
		if err != nil {
			return "", false, err
		}
		p.page, p.pos, p.more, p.started = page, 0, more, true
	}
	return p.page[p.pos], true, nil
}

// consume moves past target key t, checking the listing ascends before
// any decision is taken on t.
func (p *Pruner) consume(t string) error {
	if p.haveT && assets.CompareKeys(p.lastT, t) >= 0 {
		return fmt.Errorf("target %s listing: %s after %s: %w", p.what, assets.Tag(t), assets.Tag(p.lastT), assets.ErrOutOfOrder)
	}
	p.lastT, p.haveT = t, true
	p.pos++
	return nil
}

func (p *Pruner) drop(ctx context.Context, key string) error {
	p.pending = append(p.pending, key)
	if len(p.pending) >= p.batch {
		return p.flush(ctx)
	}
	return nil
}

func (p *Pruner) flush(ctx context.Context) error {
	if len(p.pending) == 0 {
		return nil
	}
	if err := p.del(ctx, p.pending); err != nil {
		return err
	}
	p.deleted += int64(len(p.pending))
	p.pending = p.pending[:0]
	return nil
}

// deleteRecords deletes keys in one transaction, falling back to single
// deletes (a missing record is fine) when the transaction fails.
func (s *Store) deleteRecords(tenant string) func(context.Context, []string) error {
	return func(ctx context.Context, keys []string) error {
		actions := make([]aztables.TransactionAction, len(keys))
		for i, k := range keys {
			body, err := json.Marshal(map[string]string{"PartitionKey": tenant, "RowKey": k})
			if err != nil {
				return err
			}
			actions[i] = aztables.TransactionAction{ActionType: aztables.TransactionTypeDelete, Entity: body}
		}
		if _, err := s.table.SubmitTransaction(ctx, actions, nil); err == nil {
			return nil
		}
		for _, k := range keys {
			if _, err := s.table.DeleteEntity(ctx, tenant, k, nil); err != nil && !azerr.HasTableCode(err, aztables.ResourceNotFound) {
				return fmt.Errorf("failed to delete record %s of tenant %q: %w", assets.Tag(k), tenant, azerr.Redact(err))
			}
		}
		return nil
	}
}
