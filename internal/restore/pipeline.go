package restore

import (
	"context"
	"errors"
	"fmt"
	"github.com/twinit/byok-backup/internal/blobstore"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/envelope"
	"github.com/twinit/byok-backup/internal/errcode"
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
	layout, m, err := s.loadManifest(ctx, b)
	if err != nil {
		return err
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

	pool := newChunkPool(int(am.ChunkSize)+16, s.o.Parallelism+1) // sealed chunk: plaintext + GCM tag; one per budget token (verify)
	fetch, release := blobFetch(s.blobs, layout, pool), pool.put

	// Pass 1: authenticate every chunk and decode every item; unless a
	// dry run, spool the records' ciphertext and the files' headers and
	// stage the files' content as uncommitted (invisible) blocks. The spool
	// comes first: a backup whose records don't fit it is refused before
	// the target is touched at all.
	var (
		sp *spool
		st *stager
	)
	if !r.DryRun {
		// Pass 2 reads the spool into pass 1's buffers.
		if sp, err = newSpool(s.o.SpoolDir, am, s.o.SpoolLimit, pool); err != nil {
			return err
		}
		defer sp.close()
		if err := s.o.Target.Ensure(ctx); err != nil {
			return err
		}
		if st, err = newStager(ctx, s.o.Target, r.TargetTenant, s.o.Parallelism, sp.putFile); err != nil {
			return err
		}
		st.keepInline = sp.keepInline
	}
	start := time.Now()
	counts, err := s.verify(ctx, rd, am, fetch, release, sp, st, prog)
	if err != nil {
		return err
	}
	if counts.Records != b.Records || counts.Files != b.Files || counts.Bytes != b.Bytes {
		return errIntegrity(fmt.Errorf("backup holds %+v, the catalog says records %d, files %d, bytes %d",
			counts, b.Records, b.Files, b.Bytes))
	}
	log.InfoContext(ctx, "backup verified", "records", counts.Records, "files", counts.Files, "bytes", counts.Bytes,
		"staged", st != nil, "durationMs", time.Since(start).Milliseconds())
	if r.DryRun {
		return nil
	}
	return s.write(ctx, r, b, rd, am, sp, st, prog)
}

// write is pass 2. It reads only what pass 1 verified and kept locally
// (the spool and the staged blocks), never the backups container again,
// so nothing changed or deleted there since can leave the target half
// written. It upserts every record and commits every staged file, and
// only once all of them succeeded, for replace, deletes what the backup
// lacks. A failure says exactly how far it got ([writeState]).
func (s *Service) write(ctx context.Context, r *catalog.Restore, b *catalog.Backup, rd *envelope.Reader, am *envelope.Manifest, sp *spool, st *stager, prog *progress) error {
	ws := &writeState{records: b.Records, files: b.Files, prog: prog}
	// What the target held before anything was written: a side that held
	// nothing has nothing to prune, and reading back every record and file
	// the restore just wrote would cost a second pass over them (200,000
	// records at issue 13's 10 GiB size). Writes by others while the
	// restore runs are kept either way, as a prune before they landed
	// would keep them.
	heldRecords, heldFiles := true, true
	if r.Mode == catalog.ModeReplace {
		var err error
		if heldRecords, heldFiles, err = s.o.Target.Holds(ctx, r.TargetTenant); err != nil {
			if ctx.Err() != nil {
				return err
			}
			return errcode.Wrap(err, errcode.ServiceUnavailable,
				"The target tenant's storage could not be read, so the restore did not start writing: nothing was written. Start the restore again.")
		}
	}
	err := runBoth(ctx,
		func(ctx context.Context) error {
			ps := s.stream(ctx, rd, am, blobstore.StreamRecords, sp.fetch(am), nil, nil)
			ps.release = sp.bufs.put
			defer ps.Close()
			return s.writeRecords(ctx, r, assets.NewDecoder(ps), prog)
		},
		func(ctx context.Context) error { return s.commitFiles(ctx, r, sp, st, prog) })
	if err == nil && r.Mode == catalog.ModeReplace {
		ws.pruning.Store(true)
		err = runBoth(ctx,
			func(ctx context.Context) error {
				if !heldRecords {
					ws.recordsPruned.Store(true)
					return nil
				}
				ps := s.stream(ctx, rd, am, blobstore.StreamRecords, sp.fetch(am), nil, nil)
				ps.release = sp.bufs.put
				defer ps.Close()
				if err := s.pruneRecords(ctx, r, assets.NewDecoder(ps)); err != nil {
					return err
				}
				ws.recordsPruned.Store(true)
				return nil
			},
			func(ctx context.Context) error {
				if heldFiles {
					if err := s.pruneFiles(ctx, r, sp); err != nil {
						return err
					}
				}
				ws.filesPruned.Store(true)
				return nil
			})
	}
	if err != nil {
		return ws.fail(err)
	}
	return nil
}

// writeState is how far pass 2 got, for the message of a failure after
// the target may have changed.
type writeState struct {
	records, files                      int64
	prog                                *progress
	pruning, recordsPruned, filesPruned atomic.Bool
}

// fail types a pass 2 failure with a message that says exactly what state
// the target is in (never "nothing was written"). Failures without a
// contract code of their own, and integrity failures (pass 2 reads only
// the local spool, which pass 1 filled with verified data), become
// ServiceUnavailable: a redelivery restarts the restore, which is
// idempotent, and completes it.
func (ws *writeState) fail(err error) error {
	code := errcode.CodeOf(err)
	if code == errcode.Internal || code == errcode.IntegrityCheckFailed {
		code = errcode.ServiceUnavailable
	}
	prune := "nothing was deleted (pruning had not started)"
	if ws.pruning.Load() {
		prune = "pruning (deleting what the backup lacks) started: records " + done(ws.recordsPruned.Load()) +
			", files " + done(ws.filesPruned.Load())
	}
	p := ws.prog.snapshot()
	return errcode.Wrap(err, code,
		"The restore failed after it began writing to the target tenant (%s), which may now be partly restored: %d of %d records upserted, %d of %d files committed, %s. Start the restore again to complete it.",
		errcode.CodeOf(err), p.Records, ws.records, p.Files, ws.files, prune)
}

func done(ok bool) string {
	if ok {
		return "pruned"
	}
	return "not fully pruned"
}

// checkShape checks the authenticated manifest against what the backup
// pipeline writes and the catalog recorded: exactly the records and files
// streams and the recorded number of chunks.
func checkShape(m *envelope.Manifest, b *catalog.Backup) error {
	if len(m.Streams) != 2 || m.Streams[0].ID != blobstore.StreamRecords || m.Streams[1].ID != blobstore.StreamFiles {
		return fmt.Errorf("manifest has %d streams, not records and files", len(m.Streams))
	}
	if n := m.Streams[0].Chunks + m.Streams[1].Chunks; b.Chunks != 0 && n != uint64(b.Chunks) {
		return fmt.Errorf("manifest lists %d chunks, the catalog %d", n, b.Chunks)
	}
	return nil
}

// stream reads stream id with chunks from b, or from a budget of its own
// when b is nil: Parallelism chunks being fetched and one being read.
func (s *Service) stream(ctx context.Context, rd *envelope.Reader, m *envelope.Manifest, id uint32, fetch fetchFunc, sp *spool, b budget) *plainStream {
	info, _ := m.Stream(id)
	var onSealed func(uint32, uint64, []byte) error
	if sp != nil && id == blobstore.StreamRecords { // pass 2 needs the files' headers only (spooled apart)
		onSealed = sp.put
	}
	if b == nil {
		b = newBudget(s.o.Parallelism + 1)
	}
	return newPlainStream(ctx, rd, info, fetch, b, onSealed)
}

// verify is pass 1: both streams at once, every chunk authenticated (and
// spooled), every record and file header decoded, file content read (and
// staged when st is set, i.e. not a dry run), and the streams' end frames
// checked. Records must only be in the records stream and files in the
// files stream.
func (s *Service) verify(ctx context.Context, rd *envelope.Reader, m *envelope.Manifest, fetch fetchFunc, release func([]byte), sp *spool, st *stager, prog *progress) (assets.Counts, error) {
	dryRun := st == nil
	var rc, fc assets.Counts
	// Both streams draw on one budget: memory stays that of one stream
	// read ahead however the backup divides between records and files.
	b := newBudget(s.o.Parallelism + 1)
	each := func(id uint32, want assets.Kind, out *assets.Counts) func(context.Context) error {
		return func(ctx context.Context) error {
			ps := s.stream(ctx, rd, m, id, fetch, sp, b)
			ps.release = release
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
					return errIntegrity(fmt.Errorf("stream %s holds an item of kind %d", blobstore.StreamName(id), k))
				}
				if st != nil && k == assets.KindFile {
					if err := st.file(dec.File(), dec.Content()); err != nil {
						return err
					}
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
	files := each(blobstore.StreamFiles, assets.KindFile, &fc)
	if st != nil {
		stage := files
		files = func(ctx context.Context) error {
			err := stage(ctx)
			if werr := st.wait(); err == nil {
				err = werr
			}
			return err
		}
	}
	err := runBoth(ctx, each(blobstore.StreamRecords, assets.KindRecord, &rc), files)
	return assets.Counts{Records: rc.Records, Files: fc.Files, Bytes: fc.Bytes}, err
}

func (s *Service) writeRecords(ctx context.Context, r *catalog.Restore, dec *assets.Decoder, prog *progress) error {
	w, err := s.o.Target.NewRecordWriter(r.TargetTenant)
	if err != nil {
		return err
	}
	for {
		_, err := dec.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := w.Put(ctx, dec.Record()); err != nil {
			return err
		}
		prog.records.Store(w.Written())
	}
	if err := w.Flush(ctx); err != nil {
		return err
	}
	prog.records.Store(w.Written())
	return nil
}

// pruneRecords deletes the target's records the backup (read again from
// the spool) lacks.
func (s *Service) pruneRecords(ctx context.Context, r *catalog.Restore, dec *assets.Decoder) error {
	pr, err := s.o.Target.NewRecordPruner(r.TargetTenant)
	if err != nil {
		return err
	}
	for {
		_, err := dec.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := pr.Keep(ctx, dec.Record().RowKey); err != nil {
			return fmt.Errorf("failed to prune records of the target: %w", err)
		}
	}
	if _, err := pr.Finish(ctx); err != nil {
		return fmt.Errorf("failed to prune records of the target: %w", err)
	}
	return nil
}

// pruneFiles deletes the target's files the backup (the spooled headers)
// lacks.
func (s *Service) pruneFiles(ctx context.Context, r *catalog.Restore, sp *spool) error {
	pr, err := s.o.Target.NewFilePruner(r.TargetTenant)
	if err != nil {
		return err
	}
	hr, err := sp.files()
	if err != nil {
		return err
	}
	for {
		sf, err := hr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := pr.Keep(ctx, sf.f.Path); err != nil {
			return fmt.Errorf("failed to prune files of the target: %w", err)
		}
	}
	if _, err := pr.Finish(ctx); err != nil {
		return fmt.Errorf("failed to prune files of the target: %w", err)
	}
	return nil
}

// commitFiles commits the block lists pass 1 staged, with each file's
// properties and metadata from the spool, Parallelism at a time.
func (s *Service) commitFiles(ctx context.Context, r *catalog.Restore, sp *spool, st *stager, prog *progress) error {
	hr, err := sp.files()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		slots = make(chan struct{}, 2*s.o.Parallelism)
		// bufs are the inline contents' upload buffers, one per slot.
		bufs = make(chan []byte, 2*s.o.Parallelism)
	)
	for range 2 * s.o.Parallelism {
		bufs <- nil
	}
	fail := func(err error) { once.Do(func() { first = err; cancel(err) }) }
	err = func() error {
		for {
			sf, err := hr.next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
			// Inline content lives in the reader's buffer until the next
			// header: the upload gets its own copy, in a reused buffer.
			var data []byte
			if sf.data != nil {
				data = append((<-bufs)[:0], sf.data...)
			}
			wg.Go(func() {
				defer func() {
					if data != nil {
						bufs <- data
					}
					<-slots
				}()
				var err error
				if data != nil {
					err = s.o.Target.PutFileBytes(ctx, r.TargetTenant, sf.f, data)
				} else {
					err = s.o.Target.CommitFile(ctx, r.TargetTenant, sf.f, st.blockIDs(sf.blocks), nil)
				}
				if err != nil {
					fail(err)
					return
				}
				prog.files.Add(1)
				prog.bytes.Add(sf.f.Size)
			})
		}
	}()
	if err != nil {
		fail(err)
	}
	wg.Wait()
	return first
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

// execute loads the backup row and runs the pipeline.
func (s *Service) execute(ctx context.Context, r *catalog.Restore, prog *progress, log *slog.Logger) error {
	b, err := s.o.Catalog.GetBackup(ctx, r.Tenant, r.BackupID)
	if errors.Is(err, catalog.ErrNotFound) {
		return errcode.Wrap(err, errcode.BackupNotFound, "Backup %s of tenant %s no longer exists, so it can't be restored.", r.BackupID, r.Tenant)
	}
	if err != nil {
		return fmt.Errorf("failed to read the backup: %w", err)
	}
	if b.Status == catalog.StatusDeleted || b.Status == catalog.StatusPurged {
		return deletedError(b)
	}
	if !b.Restorable() {
		return errcode.New(errcode.BackupIncomplete, "Backup %s of tenant %s is %s, not completed, so it can't be restored.", r.BackupID, r.Tenant, b.Status)
	}
	return s.run(ctx, r, b, prog, log)
}
