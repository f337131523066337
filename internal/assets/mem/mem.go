// Package mem is an in-memory [assets.Store], for tests of the services
// that read and write tenants' assets. assets/assetstest holds it to the
// Azure adapter (assets/azure): listing order ([assets.CompareKeys]),
// replace semantics, pinned reads, staged blocks, pruning and the errors a
// service branches on are the same. It keeps file contents in memory, so it
// suits test-sized data only.
package mem

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/errcode"
)

// Store is an in-memory [assets.Store]. Safe for concurrent use.
type Store struct {
	mu sync.Mutex
	// table and container say whether Ensure has created them: reading
	// before is ErrSourceMissing, as from a misnamed Azure table.
	table, container bool
	records          map[string]map[string]assets.Record // tenant → row key → record
	files            map[string]map[string]*file         // tenant → path → file
	staged           map[string]map[string][]byte        // tenant/path → block id → data
	etag             uint64
}

type file struct {
	f       assets.File // ETag included
	content []byte
}

var _ assets.Store = (*Store)(nil)

// New returns a store whose table and container don't exist yet (call
// Ensure), like a fresh storage account.
func New() *Store {
	return &Store{
		records: map[string]map[string]assets.Record{},
		files:   map[string]map[string]*file{},
		staged:  map[string]map[string][]byte{},
	}
}

// Ensure creates the table and the container.
func (s *Store) Ensure(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.table, s.container = true, true
	return nil
}

// DropTable and DropContainer delete the table or the container, to test
// a misconfigured source.
func (s *Store) DropTable() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.table, s.records = false, map[string]map[string]assets.Record{}
}

// DropContainer deletes the container and every file.
func (s *Store) DropContainer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.container, s.files, s.staged = false, map[string]map[string]*file{}, map[string]map[string][]byte{}
}

func (s *Store) nextETag() string {
	s.etag++
	return `"0x` + strconv.FormatUint(s.etag, 16) + `"`
}

// unavailable is the error of a write to a missing table or container, as
// the adapter types it: a retryable storage failure.
func unavailable(what string) error {
	return errcode.Wrap(fmt.Errorf("mem: %s does not exist", what), errcode.ServiceUnavailable,
		"A file could not be written to the target tenant's storage; the restore can be retried.")
}

// Records yields the tenant's records in [assets.CompareKeys] order.
func (s *Store) Records(ctx context.Context, tenant string) iter.Seq2[assets.Record, error] {
	return func(yield func(assets.Record, error) bool) {
		if err := assets.CheckTenant(tenant); err != nil {
			yield(assets.Record{}, err)
			return
		}
		if err := ctx.Err(); err != nil {
			yield(assets.Record{}, err)
			return
		}
		s.mu.Lock()
		if !s.table {
			s.mu.Unlock()
			yield(assets.Record{}, assets.MissingTableError(errors.New("mem: no table")))
			return
		}
		recs := slices.Collect(maps.Values(s.records[tenant]))
		s.mu.Unlock()
		slices.SortFunc(recs, func(a, b assets.Record) int { return assets.CompareKeys(a.RowKey, b.RowKey) })
		for _, r := range recs {
			if !yield(cloneRecord(r), nil) {
				return
			}
		}
	}
}

func cloneRecord(r assets.Record) assets.Record {
	r.Properties = slices.Clone(r.Properties)
	for i, p := range r.Properties {
		if b, ok := p.Value.([]byte); ok {
			r.Properties[i].Value = bytes.Clone(b)
		}
	}
	return r
}

// Files yields the tenant's files in [assets.CompareKeys] order, metadata
// names lowercased as Azure lists them.
func (s *Store) Files(ctx context.Context, tenant string) iter.Seq2[assets.File, error] {
	return func(yield func(assets.File, error) bool) {
		if err := assets.CheckTenant(tenant); err != nil {
			yield(assets.File{}, err)
			return
		}
		if err := ctx.Err(); err != nil {
			yield(assets.File{}, err)
			return
		}
		s.mu.Lock()
		if !s.container {
			s.mu.Unlock()
			yield(assets.File{}, assets.MissingContainerError(errors.New("mem: no container")))
			return
		}
		var list []assets.File
		for _, f := range s.files[tenant] {
			list = append(list, listed(f.f))
		}
		s.mu.Unlock()
		slices.SortFunc(list, func(a, b assets.File) int { return assets.CompareKeys(a.Path, b.Path) })
		for _, f := range list {
			if !yield(f, nil) {
				return
			}
		}
	}
}

func listed(f assets.File) assets.File {
	if len(f.Metadata) > 0 {
		md := make(map[string]string, len(f.Metadata))
		for k, v := range f.Metadata {
			md[strings.ToLower(k)] = v
		}
		f.Metadata = md
	}
	return f
}

// OpenFile reads f as listed: ErrFileChanged if its ETag changed since,
// ErrFileGone if it was deleted.
func (s *Store) OpenFile(ctx context.Context, tenant string, f assets.File) (io.ReadCloser, error) {
	if err := assets.CheckTenant(tenant); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.files[tenant][f.Path]
	switch {
	case cur == nil:
		return nil, fmt.Errorf("failed to read file %s of tenant %q: %w", assets.Tag(f.Path), tenant, assets.ErrFileGone)
	case f.ETag != "" && f.ETag != cur.f.ETag:
		return nil, fmt.Errorf("failed to read file %s of tenant %q: %w", assets.Tag(f.Path), tenant, assets.ErrFileChanged)
	}
	return io.NopCloser(bytes.NewReader(cur.content)), nil
}

// PutFileBytes stores f with a copy of data.
func (s *Store) PutFileBytes(ctx context.Context, tenant string, f assets.File, data []byte) error {
	if int64(len(data)) != f.Size {
		return fmt.Errorf("file %s: %d bytes of content for a size of %d: %w", assets.Tag(f.Path), len(data), f.Size, assets.ErrShortContent)
	}
	return s.PutFile(ctx, tenant, f, bytes.NewReader(data))
}

// PutFile stores f, reading exactly f.Size bytes from content.
func (s *Store) PutFile(ctx context.Context, tenant string, f assets.File, content io.Reader) error {
	if err := assets.CheckTenant(tenant); err != nil {
		return err
	}
	if err := f.Validate(); err != nil {
		return fmt.Errorf("file %s can't be written: %w", assets.Tag(f.Path), err)
	}
	data := make([]byte, f.Size)
	if _, err := io.ReadFull(content, data); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			err = assets.ErrShortContent
		}
		return fmt.Errorf("failed to write file %s of tenant %q: %w", assets.Tag(f.Path), tenant, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.store(tenant, f, data)
}

func (s *Store) store(tenant string, f assets.File, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.container {
		return unavailable("the container")
	}
	if s.files[tenant] == nil {
		s.files[tenant] = map[string]*file{}
	}
	f.Size, f.ETag, f.Metadata = int64(len(data)), s.nextETag(), maps.Clone(f.Metadata)
	s.files[tenant][f.Path] = &file{f: f, content: data}
	delete(s.staged, tenant+"/"+f.Path)
	return nil
}

// DeleteFile deletes one file; a missing file is no error.
func (s *Store) DeleteFile(ctx context.Context, tenant, path string) error {
	if err := assets.CheckTenant(tenant); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.files[tenant], path)
	return nil
}

// StageBlock keeps data as an uncommitted block of the file: invisible
// until CommitFile names it.
func (s *Store) StageBlock(ctx context.Context, tenant, path, blockID string, data []byte) error {
	if err := assets.CheckTenant(tenant); err != nil {
		return err
	}
	if err := (assets.File{Path: path}).Validate(); err != nil {
		return fmt.Errorf("file %s can't be staged: %w", assets.Tag(path), err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.container {
		return unavailable("the container")
	}
	k := tenant + "/" + path
	if s.staged[k] == nil {
		s.staged[k] = map[string][]byte{}
	}
	s.staged[k][blockID] = bytes.Clone(data)
	return nil
}

// CommitFile makes the staged blocks, in order, the file's content.
func (s *Store) CommitFile(ctx context.Context, tenant string, f assets.File, blockIDs []string, contentMD5 []byte) error {
	if err := assets.CheckTenant(tenant); err != nil {
		return err
	}
	if err := f.Validate(); err != nil {
		return fmt.Errorf("file %s can't be written: %w", assets.Tag(f.Path), err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	blocks := s.staged[tenant+"/"+f.Path]
	var data []byte
	for _, id := range blockIDs {
		b, ok := blocks[id]
		if !ok {
			s.mu.Unlock()
			return errcode.Wrap(fmt.Errorf("failed to commit file %s of tenant %q: block never staged", assets.Tag(f.Path), tenant),
				errcode.ServiceUnavailable, "A file could not be written to the target tenant's storage; the restore can be retried.")
		}
		data = append(data, b...)
	}
	s.mu.Unlock()
	if data == nil {
		data = []byte{}
	}
	return s.store(tenant, f, data)
}

// NewRecordWriter returns a writer that upserts (replaces) whole records
// on Flush.
func (s *Store) NewRecordWriter(tenant string) (assets.RecordWriter, error) {
	if err := assets.CheckTenant(tenant); err != nil {
		return nil, err
	}
	return &recordWriter{s: s, tenant: tenant}, nil
}

type recordWriter struct {
	s       *Store
	tenant  string
	batch   []assets.Record
	puts    int64
	written int64
}

func (w *recordWriter) Put(ctx context.Context, r assets.Record) error {
	w.puts++
	if err := r.Validate(); err != nil {
		return fmt.Errorf("record #%d can't be written: %w", w.puts, err)
	}
	w.batch = append(w.batch, cloneRecord(r))
	return nil
}

func (w *recordWriter) Flush(ctx context.Context) error {
	if len(w.batch) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.table {
		n := len(w.batch)
		w.batch = nil
		return errcode.Wrap(errors.New("mem: the table does not exist"), errcode.ServiceUnavailable,
			"%d of %d records could not be written to the target tenant's table; the restore can be retried.", n, n)
	}
	if s.records[w.tenant] == nil {
		s.records[w.tenant] = map[string]assets.Record{}
	}
	for _, r := range w.batch {
		s.records[w.tenant][r.RowKey] = r
	}
	w.written += int64(len(w.batch))
	w.batch = nil
	return nil
}

func (w *recordWriter) Written() int64 { return w.written }

// Holds reports whether the tenant has records and files.
func (s *Store) Holds(ctx context.Context, tenant string) (records, files bool, err error) {
	if err := assets.CheckTenant(tenant); err != nil {
		return false, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.records[tenant]) > 0, len(s.files[tenant]) > 0, ctx.Err()
}

// NewRecordPruner returns a pruner of the tenant's records.
func (s *Store) NewRecordPruner(tenant string) (assets.Pruner, error) {
	if err := assets.CheckTenant(tenant); err != nil {
		return nil, err
	}
	return &pruner{what: "records", s: s, keys: func() []string {
		return slices.Collect(maps.Keys(s.records[tenant]))
	}, del: func(k string) { delete(s.records[tenant], k) }}, nil
}

// NewFilePruner returns a pruner of the tenant's files.
func (s *Store) NewFilePruner(tenant string) (assets.Pruner, error) {
	if err := assets.CheckTenant(tenant); err != nil {
		return nil, err
	}
	return &pruner{what: "files", s: s, keys: func() []string {
		return slices.Collect(maps.Keys(s.files[tenant]))
	}, del: func(k string) { delete(s.files[tenant], k) }}, nil
}

// pruner deletes, at each Keep, the keys between the previous kept key and
// this one, and at Finish the keys after the last: the adapter's merge
// with a listing that is always current.
type pruner struct {
	what    string
	s       *Store
	keys    func() []string // under s.mu
	del     func(string)    // under s.mu
	last    string
	have    bool
	deleted int64
}

func (p *pruner) Keep(ctx context.Context, key string) error {
	if p.have && assets.CompareKeys(p.last, key) >= 0 {
		return fmt.Errorf("backup %s: %s after %s: %w", p.what, assets.Tag(key), assets.Tag(p.last), assets.ErrOutOfOrder)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p.drop(func(k string) bool { return assets.CompareKeys(k, key) < 0 })
	p.last, p.have = key, true
	return nil
}

func (p *pruner) Finish(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return p.deleted, err
	}
	p.drop(func(string) bool { return true })
	return p.deleted, nil
}

// drop deletes the keys after the last kept one for which below holds.
func (p *pruner) drop(below func(string) bool) {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	for _, k := range p.keys() {
		if (!p.have || assets.CompareKeys(k, p.last) > 0) && below(k) {
			p.del(k)
			p.deleted++
		}
	}
}
