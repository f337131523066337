package backup

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
	"github.com/twinit/byok-backup/internal/errcode"
)

// result is what one successful attempt stored, for the commit.
type result struct {
	key          wrappedKey
	counts       assets.Counts
	chunks       int64
	storedBytes  int64 // chunks plus manifest
	streams      map[string]int64
	manifestBlob string
	// manifestDigest pins the manifest this attempt wrote, so the commit
	// names it and no other attempt's (catalog.DigestManifest).
	manifestDigest string
}

// progress counts what the running attempt has read and encrypted; the
// heartbeat persists a snapshot (restore keeps its progress the same way).
type progress struct {
	records, files atomic.Int64
	// doneBytes is the content of the files written whole; fileBytes what
	// has been read of the current one (a large file streams for a while).
	doneBytes, fileBytes atomic.Int64
	listing              atomic.Pointer[readAhead]
}

func (p *progress) snapshot() catalog.BackupProgress {
	c := catalog.BackupProgress{Records: p.records.Load(), Files: p.files.Load(), Bytes: p.doneBytes.Load() + p.fileBytes.Load()}
	if ra := p.listing.Load(); ra != nil && ra.listedAll.Load() {
		c.TotalBytes, c.TotalKnown = ra.listedBytes.Load(), true
	}
	return c
}

// fileDone records a file's end: the encoder's counts replace the bytes
// read, so a file left out (deleted meanwhile) counts nothing.
func (p *progress) fileDone(c assets.Counts) {
	p.files.Store(c.Files)
	p.doneBytes.Store(c.Bytes)
	p.fileBytes.Store(0)
}

// countingReader adds what is read to the current file's bytes.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// pipeline makes one attempt's blobs: data key, wrap, both streams
// uploaded in parallel, then the manifest. It writes no catalog row.
func (s *Service) pipeline(ctx context.Context, layout blobstore.Layout, firstAttempt time.Time, prog *progress, log *slog.Logger) (result, error) {
	tenant, backupID := layout.Tenant, layout.BackupID
	dk, err := envelope.NewDataKey()
	if err != nil {
		return result{}, fmt.Errorf("failed to make a data key: %w", err)
	}
	key, err := s.wrapDataKey(ctx, tenant, backupID, firstAttempt, dk.Bytes(), log)
	if err != nil {
		dk.Destroy()
		return result{}, err
	}
	up := newUploader(ctx, s.blobs, layout, s.o.Parallelism)
	w, err := envelope.NewWriter(dk, tenant, backupID, envelope.NewKeyRef(key.source, key.wrapped), up,
		&envelope.WriterOptions{ChunkSize: s.o.ChunkSize})
	dk.Destroy() // the writer holds derived subkeys only
	if err != nil {
		return result{}, fmt.Errorf("failed to start the envelope writer: %w", err)
	}
	up.release = w.Release

	var recCounts, fileCounts assets.Counts
	err = runBoth(up.ctx,
		func(ctx context.Context) (err error) {
			recCounts, err = s.writeRecords(ctx, w, tenant, prog)
			return err
		},
		func(ctx context.Context) (err error) {
			fileCounts, err = s.writeFiles(ctx, w, tenant, prog, log)
			return err
		})
	if err == nil {
		err = up.wait()
	}
	if err != nil {
		up.stop(err)
		w.Abort()
		// An upload failure is the root cause of the streams' errors.
		if uerr := up.err(); uerr != nil && !errors.Is(err, uerr) && errors.Is(err, context.Canceled) {
			err = uerr
		}
		return result{}, err
	}
	manifest, err := w.Finish()
	up.stop(context.Canceled)
	if err != nil {
		return result{}, fmt.Errorf("failed to finish the manifest: %w", err)
	}
	if err := s.blobs.PutBlob(ctx, layout.Manifest(), manifest); err != nil {
		return result{}, fmt.Errorf("failed to upload the manifest: %w", err)
	}
	return result{
		key:         key,
		counts:      assets.Counts{Records: recCounts.Records, Files: fileCounts.Files, Bytes: fileCounts.Bytes},
		chunks:      up.chunks.Load(),
		storedBytes: up.stored.Load() + int64(len(manifest)),
		streams: map[string]int64{
			StreamName(StreamRecords): up.perStream[StreamRecords].Load(),
			StreamName(StreamFiles):   up.perStream[StreamFiles].Load(),
		},
		manifestBlob:   layout.Manifest(),
		manifestDigest: catalog.DigestManifest(manifest),
	}, nil
}

// writeRecords streams the tenant's records, a table page at a time, into
// envelope stream 0.
func (s *Service) writeRecords(ctx context.Context, w *envelope.Writer, tenant string, prog *progress) (assets.Counts, error) {
	sw, err := w.Create(ctx, StreamRecords)
	if err != nil {
		return assets.Counts{}, fmt.Errorf("failed to open the records stream: %w", err)
	}
	enc := assets.NewEncoder(sw)
	for rec, err := range s.o.Source.Records(ctx, tenant) {
		if err != nil {
			return assets.Counts{}, fmt.Errorf("failed to read the records: %w", err)
		}
		if err := enc.WriteRecord(rec); err != nil {
			return assets.Counts{}, fmt.Errorf("failed to write record %d: %w", enc.Counts().Records+1, err)
		}
		prog.records.Store(enc.Counts().Records)
	}
	if err := enc.Close(); err != nil {
		return assets.Counts{}, fmt.Errorf("failed to end the records stream: %w", err)
	}
	if err := sw.Close(); err != nil {
		return assets.Counts{}, fmt.Errorf("failed to seal the records stream: %w", err)
	}
	return enc.Counts(), nil
}

// writeFiles streams the tenant's files into envelope stream 1, strictly in
// listing order. Small files are read ahead, up to Parallelism at a time
// (see readAhead), so their GETs overlap each other and the encryption;
// large ones are opened when their turn comes and streamed. A file deleted
// between the listing and its read is left out (the backup then shows the
// tenant as it was after the deletion); one rewritten meanwhile fails the
// attempt, which is retried.
func (s *Service) writeFiles(ctx context.Context, w *envelope.Writer, tenant string, prog *progress, log *slog.Logger) (assets.Counts, error) {
	sw, err := w.Create(ctx, StreamFiles)
	if err != nil {
		return assets.Counts{}, fmt.Errorf("failed to open the files stream: %w", err)
	}
	enc := assets.NewEncoder(sw)
	ra := startReadAhead(ctx, s.o.Source, tenant, s.o.Parallelism)
	defer ra.stop()
	prog.listing.Store(ra)
	var body bytes.Reader
	for p := range ra.queue {
		if err := p.wait(ctx); err != nil {
			return assets.Counts{}, err
		}
		if p.listErr != nil {
			return assets.Counts{}, fmt.Errorf("failed to list the files: %w", p.listErr)
		}
		if err := s.writeFile(ctx, enc, &body, p, tenant, &prog.fileBytes); errors.Is(err, assets.ErrFileGone) {
			log.InfoContext(ctx, "a file was deleted while the backup ran; it is left out", "fileNumber", enc.Counts().Files+1)
		} else if err != nil {
			return assets.Counts{}, fileError(err, enc.Counts().Files+1)
		}
		prog.fileDone(enc.Counts())
		ra.release(p)
	}
	if !ra.complete {
		// The listing stopped early only because ctx ended.
		return assets.Counts{}, fmt.Errorf("the files listing was interrupted: %w", context.Cause(ctx))
	}
	if err := enc.Close(); err != nil {
		return assets.Counts{}, fmt.Errorf("failed to end the files stream: %w", err)
	}
	if err := sw.Close(); err != nil {
		return assets.Counts{}, fmt.Errorf("failed to seal the files stream: %w", err)
	}
	return enc.Counts(), nil
}

// writeFile encodes one file: from its read-ahead buffer, or, for a large
// file, streamed from storage. ErrFileGone means it was deleted and nothing
// was written.
func (s *Service) writeFile(ctx context.Context, enc *assets.Encoder, body *bytes.Reader, p *pending, tenant string, read *atomic.Int64) error {
	if p.err != nil {
		return p.err
	}
	if p.buf != nil {
		// Read ahead whole: counted when written (fileDone).
		body.Reset(p.body)
		return enc.WriteFile(p.f, body)
	}
	rc, err := s.o.Source.OpenFile(ctx, tenant, p.f)
	if err != nil {
		return err
	}
	defer rc.Close()
	return enc.WriteFile(p.f, countingReader{r: rc, n: read})
}

// fileError names the failing file by its position only: paths are tenant
// data and must not reach logs or the catalog in clear.
func fileError(err error, n int64) error {
	if errors.Is(err, assets.ErrFileChanged) {
		return errcode.Wrap(fmt.Errorf("file %d: %w", n, err), errcode.ServiceUnavailable,
			"A file changed while it was being backed up. The backup is retried.")
	}
	return fmt.Errorf("failed to back up file %d: %w", n, err)
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
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil {
				once.Do(func() { first = err; cancel(err) })
			}
		}()
	}
	wg.Wait()
	return first
}
