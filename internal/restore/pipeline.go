package restore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/blobstore"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/envelope"
)

// progress counts what the running attempt verified (dry run) or wrote;
// the heartbeat persists it.
type progress struct{ records, files, bytes atomic.Int64 }

func (p *progress) snapshot() catalog.Progress {
	return catalog.Progress{Records: p.records.Load(), Files: p.files.Load(), Bytes: p.bytes.Load()}
}

// run verifies backup b completely and then, unless r is a dry run,
// writes it into r's target tenant.
func (s *Service) run(ctx context.Context, r *catalog.Restore, b *catalog.Backup, prog *progress, log *slog.Logger) error {
	layout, err := layoutOf(b)
	if err != nil {
		return errIntegrity(err)
	}
	raw, err := s.blobs.GetBlob(ctx, layout.Manifest())
	if blobstore.IsNotExist(err) {
		return errIntegrity(fmt.Errorf("the manifest is missing: %w", err))
	}
	if err != nil {
		return fmt.Errorf("failed to read the manifest: %w", err)
	}
	m, err := envelope.ParseManifest(raw)
	if err != nil {
		return err // ErrIntegrity or ErrUnsupportedFormat, both IntegrityCheckFailed
	}
	dk, err := s.unwrap(ctx, r, b, m, log)
	if err != nil {
		return err
	}
	rd, err := envelope.Open(m, dk, b.Tenant, b.BackupID)
	dk.Destroy() // the reader holds the payload key only
	if err != nil {
		return err
	}
	am := rd.Manifest() // authenticated
	if err := checkShape(am, b); err != nil {
		return errIntegrity(err)
	}

	fetch := blobFetch(s.blobs, layout)
	var sp *spool
	if total := storedSize(am); s.o.SpoolLimit >= 0 && total <= s.o.SpoolLimit {
		if sp, err = newSpool(s.o.SpoolDir, am); err != nil {
			return err
		}
		defer sp.close()
	}

	// Pass 1: authenticate every chunk and decode every item.
	start := time.Now()
	counts, err := s.verify(ctx, rd, am, fetch, sp, r.DryRun, prog)
	if err != nil {
		return err
	}
	if counts.Records != b.Records || counts.Files != b.Files || counts.Bytes != b.Bytes {
		return errIntegrity(fmt.Errorf("backup holds %+v, the catalog says records %d, files %d, bytes %d",
			counts, b.Records, b.Files, b.Bytes))
	}
	log.InfoContext(ctx, "backup verified", "records", counts.Records, "files", counts.Files, "bytes", counts.Bytes,
		"spooled", sp != nil, "durationMs", time.Since(start).Milliseconds())
	if r.DryRun {
		return nil
	}

	// Pass 2: write.
	var release func([]byte)
	if sp != nil {
		fetch, release = sp.fetch(am), sp.release
	}
	if err := s.o.Target.Ensure(ctx); err != nil {
		return err
	}
	return runBoth(ctx,
		func(ctx context.Context) error {
			ps := s.stream(ctx, rd, am, streamRecords, fetch, nil)
			ps.release = release
			defer ps.Close()
			return s.writeRecords(ctx, r, assets.NewDecoder(ps), prog)
		},
		func(ctx context.Context) error {
			ps := s.stream(ctx, rd, am, streamFiles, fetch, nil)
			ps.release = release
			defer ps.Close()
			return s.writeFiles(ctx, r, assets.NewDecoder(ps), prog)
		})
}

// checkShape checks the authenticated manifest against what the backup
// pipeline writes and the catalog recorded: exactly the records and files
// streams and the recorded number of chunks.
func checkShape(m *envelope.Manifest, b *catalog.Backup) error {
	if len(m.Streams) != 2 || m.Streams[0].ID != streamRecords || m.Streams[1].ID != streamFiles {
		return fmt.Errorf("manifest has %d streams, not records and files", len(m.Streams))
	}
	if n := m.Streams[0].Chunks + m.Streams[1].Chunks; b.Chunks != 0 && n != uint64(b.Chunks) {
		return fmt.Errorf("manifest lists %d chunks, the catalog %d", n, b.Chunks)
	}
	return nil
}

func storedSize(m *envelope.Manifest) int64 {
	var n int64
	for _, s := range m.Streams {
		n += int64(s.CiphertextSize)
	}
	return n
}

func (s *Service) stream(ctx context.Context, rd *envelope.Reader, m *envelope.Manifest, id uint32, fetch fetchFunc, sp *spool) *plainStream {
	info, _ := m.Stream(id)
	var onSealed func(uint32, uint64, []byte) error
	if sp != nil {
		onSealed = sp.put
	}
	return newPlainStream(ctx, rd, info, fetch, s.o.Parallelism, onSealed)
}

// verify is pass 1: both streams at once, every chunk authenticated (and
// spooled), every record and file header decoded, file content read, and
// the streams' end frames checked. Records must only be in the records
// stream and files in the files stream.
func (s *Service) verify(ctx context.Context, rd *envelope.Reader, m *envelope.Manifest, fetch fetchFunc, sp *spool, dryRun bool, prog *progress) (assets.Counts, error) {
	var rc, fc assets.Counts
	each := func(id uint32, want assets.Kind, out *assets.Counts) func(context.Context) error {
		return func(ctx context.Context) error {
			ps := s.stream(ctx, rd, m, id, fetch, sp)
			defer ps.Close()
			dec := assets.NewDecoder(ps)
			for {
				k, err := dec.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					return err
				}
				if k != want {
					return errIntegrity(fmt.Errorf("stream %s holds an item of kind %d", streamName(id), k))
				}
				if dryRun {
					if k == assets.KindRecord {
						prog.records.Add(1)
					} else {
						prog.files.Add(1)
						prog.bytes.Add(dec.File().Size)
					}
				}
			}
			*out = dec.Counts()
			return nil
		}
	}
	err := runBoth(ctx, each(streamRecords, assets.KindRecord, &rc), each(streamFiles, assets.KindFile, &fc))
	return assets.Counts{Records: rc.Records, Files: fc.Files, Bytes: fc.Bytes}, err
}

func (s *Service) writeRecords(ctx context.Context, r *catalog.Restore, dec *assets.Decoder, prog *progress) error {
	w, err := s.o.Target.NewRecordWriter(r.TargetTenant)
	if err != nil {
		return err
	}
	var pr Pruner
	if r.Mode == catalog.ModeReplace {
		if pr, err = s.o.Target.NewRecordPruner(r.TargetTenant); err != nil {
			return err
		}
	}
	for {
		_, err := dec.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		rec := dec.Record()
		if err := w.Put(ctx, rec); err != nil {
			return err
		}
		if pr != nil {
			if err := pr.Keep(ctx, rec.RowKey); err != nil {
				return fmt.Errorf("failed to prune records of the target: %w", err)
			}
		}
		prog.records.Store(w.Written())
	}
	if err := w.Flush(ctx); err != nil {
		return err
	}
	prog.records.Store(w.Written())
	if pr != nil {
		if _, err := pr.Finish(ctx); err != nil {
			return fmt.Errorf("failed to prune records of the target: %w", err)
		}
	}
	return nil
}

// smallFile is the largest file the write pass reads into memory to upload
// it concurrently with the next ones; larger files are streamed by
// PutFile in blocks (with its own concurrency), one at a time.
const smallFile = 4 << 20

// writeFiles uploads the files of the files stream. Files are small or
// large: a small one is read whole into one of Parallelism reused buffers
// and uploaded in the background (memory Parallelism × smallFile), because one
// request per file in sequence would leave the storage account idle
// between them.
func (s *Service) writeFiles(ctx context.Context, r *catalog.Restore, dec *assets.Decoder, prog *progress) error {
	var pr Pruner
	if r.Mode == catalog.ModeReplace {
		var err error
		if pr, err = s.o.Target.NewFilePruner(r.TargetTenant); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		// bufs holds the small-file buffers, one per slot, reused from
		// file to file so memory stays Parallelism × smallFile flat.
		bufs = make(chan []byte, s.o.Parallelism)
	)
	for range s.o.Parallelism {
		bufs <- nil
	}
	fail := func(err error) { once.Do(func() { first = err; cancel(err) }) }
	err := func() error {
		for {
			_, err := dec.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			f := dec.File()
			if f.Size > smallFile {
				if err := s.o.Target.PutFile(ctx, r.TargetTenant, f, dec.Content()); err != nil {
					return err
				}
				prog.files.Add(1)
				prog.bytes.Add(f.Size)
			} else {
				var buf []byte
				select {
				case buf = <-bufs:
				case <-ctx.Done():
					return context.Cause(ctx)
				}
				if int64(cap(buf)) < f.Size {
					buf = make([]byte, f.Size) // grows to the largest small file seen
				}
				buf = buf[:f.Size]
				if _, err := io.ReadFull(dec.Content(), buf); err != nil {
					bufs <- buf
					return err
				}
				wg.Go(func() {
					defer func() { bufs <- buf }()
					if err := s.o.Target.PutFile(ctx, r.TargetTenant, f, bytes.NewReader(buf)); err != nil {
						fail(err)
						return
					}
					prog.files.Add(1)
					prog.bytes.Add(f.Size)
				})
			}
			if pr != nil {
				if err := pr.Keep(ctx, f.Path); err != nil {
					return fmt.Errorf("failed to prune files of the target: %w", err)
				}
			}
		}
	}()
	if err != nil {
		fail(err)
	}
	wg.Wait()
	if first != nil {
		return first
	}
	if pr != nil {
		if _, err := pr.Finish(ctx); err != nil {
			return fmt.Errorf("failed to prune files of the target: %w", err)
		}
	}
	return nil
}

// runBoth runs a and b concurrently; the first error cancels the other and
// is returned.
func runBoth(ctx context.Context, a, b func(context.Context) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, fn := range []func(context.Context) error{a, b} {
		wg.Go(func() {
			if err := fn(ctx); err != nil {
				once.Do(func() { first = err; cancel(err) })
			}
		})
	}
	wg.Wait()
	if first != nil && errors.Is(first, context.Canceled) && context.Cause(ctx) != nil && !errors.Is(context.Cause(ctx), context.Canceled) {
		return context.Cause(ctx)
	}
	return first
}
