package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/twinit/byok-backup/internal/app"
	"github.com/twinit/byok-backup/internal/azerr"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/jobqueue"
)

const scratch = "bench-raw"

// LR and the restore each write their target into a container and table
// of their own, dropped (whole, which Azurite does at once) when the
// phase is measured. So each meets the same Azurite: the source tenant,
// the backup and nothing else. Azurite's cost per table write grows with
// all the entities it holds (it keeps every table in one in-memory
// database and writes the whole of it to disk every 5 s while changed);
// writing both into Assets made the restore upsert its 200,000 records at
// 10 GiB into a table already holding LR's 200,000 as well.
const (
	lrContainer      = "bench-lr"
	lrTable          = "BenchLR"
	restoreContainer = "bench-restore"
	restoreTable     = "BenchRestore"
)

// childMain runs one phase and prints its result as JSON on stdout.
func childMain(phase string) int {
	// The project's phases run as the handler does (app.TuneRuntime); the
	// baselines are plain SDK code and keep Go's defaults.
	if phase == "backup" || phase == "restore" {
		app.TuneRuntime(os.LookupEnv)
	}
	ctx := context.Background()
	var sp spec
	b, err := os.ReadFile(os.Getenv(childSpec))
	if err == nil {
		err = json.Unmarshal(b, &sp)
	}
	var r result
	if err == nil && sp.ProfileDir != "" {
		var f *os.File
		if f, err = os.Create(filepath.Join(sp.ProfileDir, fmt.Sprintf("%s-%d.cpu.pb", phase, sp.Run))); err == nil {
			defer f.Close()
			if err = pprof.StartCPUProfile(f); err == nil {
				defer pprof.StopCPUProfile()
			}
		}
	}
	if err == nil {
		switch phase {
		case "backup":
			r, err = childBackup(ctx, sp)
		case "restore":
			r, err = childRestore(ctx, sp)
		case "LB":
			r, err = childLB(ctx, sp)
		case "LR":
			r, err = childLR(ctx, sp)
		default:
			err = fmt.Errorf("unknown phase %q", phase)
		}
	}
	if err == nil && sp.ProfileDir != "" {
		// alloc_space shows what each phase allocated over its run.
		var f *os.File
		if f, err = os.Create(filepath.Join(sp.ProfileDir, fmt.Sprintf("%s-%d.heap.pb", phase, sp.Run))); err == nil {
			err = errors.Join(pprof.Lookup("allocs").WriteTo(f, 0), f.Close())
		}
	}
	if err == nil {
		err = json.NewEncoder(os.Stdout).Encode(r)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench %s: %v\n", phase, err)
		return 1
	}
	return 0
}

func childBackup(ctx context.Context, sp spec) (result, error) {
	a, err := newApp(ctx, sp.Settings, sp.ServiceConn, sp.Verbose)
	if err != nil {
		return result{}, err
	}
	row, err := a.Backups.Request(ctx, sp.Tenant, catalog.ReasonManual)
	if err != nil {
		return result{}, err
	}
	start := time.Now()
	err = a.Backups.Run(ctx, jobqueue.BackupJob{Tenant: row.Tenant, BackupID: row.BackupID, Reason: row.Reason, RequestedAt: row.RequestedAt}, 1)
	took := time.Since(start)
	if err != nil {
		return result{}, err
	}
	if row, err = a.Catalog.GetBackup(ctx, sp.Tenant, row.BackupID); err != nil {
		return result{}, err
	}
	if row.Status != catalog.StatusCompleted {
		return result{}, fmt.Errorf("backup ended %s %+v", row.Status, row.Error)
	}
	return result{Bytes: row.Bytes, Seconds: took.Seconds(), BackupID: row.BackupID}, nil
}

func childRestore(ctx context.Context, sp spec) (result, error) {
	// The project's names are settings: the restore writes its target
	// where nothing else is (see restoreTable).
	settings := maps.Clone(sp.Settings)
	settings["TABLE_ASSETS"], settings["CONTAINER_ASSETS"] = restoreTable, restoreContainer
	a, err := newApp(ctx, settings, sp.ServiceConn, sp.Verbose)
	if err != nil {
		return result{}, err
	}
	b, err := a.Catalog.GetBackup(ctx, sp.Tenant, sp.BackupID)
	if err != nil {
		return result{}, err
	}
	r := catalog.NewRestore(sp.Tenant, sp.BackupID, sp.Target, catalog.ModeReplace, false, time.Now())
	if err := a.Catalog.CreateRestore(ctx, r); err != nil {
		return result{}, err
	}
	start := time.Now()
	err = a.Restores.RunJob(ctx, jobqueue.RestoreJob{Tenant: sp.Tenant, RestoreID: r.RestoreID}, jobqueue.Delivery{DequeueCount: 1})
	took := time.Since(start)
	if err != nil {
		return result{}, err
	}
	got, err := a.Catalog.GetRestore(ctx, sp.Tenant, r.RestoreID)
	if err != nil {
		return result{}, err
	}
	if got.State != catalog.RestoreSucceeded || got.Progress.Bytes != b.Bytes {
		return result{}, fmt.Errorf("restore ended %s %+v", got.State, got.Error)
	}
	return result{Bytes: b.Bytes, Seconds: took.Seconds()}, nil
}

// segment is a run of bytes in one of LB's blobs: part of a file, at Off
// in it, or part of the records stream (JSON lines, each ending in "\n").
type segment struct {
	File    string `json:",omitempty"` // blob name; empty for records
	Size    int64  `json:",omitempty"` // the whole file's size
	Off     int64  `json:",omitempty"`
	Records bool   `json:",omitempty"`
	Len     int64
}

// blobIndex is one of LB's blobs and what it holds, in order.
type blobIndex struct {
	Name     string
	Segments []segment
}

// index is LB's layout: its blobs in the order they were cut. A file's
// bytes stay together (whole 8 MiB blobs of it, its tail packed with the
// small files), so LR assembles a handful of files at a time, not all.
type index struct {
	Blobs []blobIndex
}

type piece struct {
	seg  segment
	data []byte
}

type errOnce struct {
	mu  sync.Mutex
	err error
}

func (e *errOnce) set(err error) {
	e.mu.Lock()
	e.err = errors.Join(e.err, err)
	e.mu.Unlock()
}

func (e *errOnce) get() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// lrTarget creates LR's container and table unless they exist: with
// -reclaim=false a second run finds the first run's (each run writes its
// own tenant into them).
func lrTarget(ctx context.Context, bs *azblob.Client, ts *aztables.ServiceClient) (*aztables.Client, error) {
	table := ts.NewClient(lrTable)
	if _, err := table.CreateTable(ctx, nil); err != nil && !azerr.HasTableCode(err, aztables.TableAlreadyExists) {
		return nil, err
	}
	if _, err := bs.CreateContainer(ctx, lrContainer, nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return nil, err
	}
	return table, nil
}

func clients(sp spec) (*azblob.Client, *aztables.ServiceClient, error) {
	bs, err := azblob.NewClientFromConnectionString(sp.Conn, nil)
	if err != nil {
		return nil, nil, err
	}
	ts, err := aztables.NewServiceClientFromConnectionString(sp.Conn, nil)
	return bs, ts, err
}

// childLB: list records and files, download files 4 at a time, pack the
// bytes into 8 MiB blobs and upload them 4 at a time, all stages at once.
// A file's whole 8 MiB pieces are cut into blobs by its downloader; its
// tail (a small file is all tail) and the record pages go to one packer.
func childLB(ctx context.Context, sp spec) (result, error) {
	bs, ts, err := clients(sp)
	if err != nil {
		return result{}, err
	}
	out := bs.ServiceClient().NewContainerClient(scratch)
	if _, err := out.Create(ctx, nil); err != nil && !strings.Contains(err.Error(), "ContainerAlreadyExists") {
		return result{}, err
	}
	start := time.Now()
	var fail errOnce

	type blob struct {
		name string
		data []byte
	}
	blobs := make(chan blob, par)
	var uploaders sync.WaitGroup
	for range par {
		uploaders.Go(func() {
			for b := range blobs {
				if _, err := out.NewBlockBlobClient(b.name).UploadBuffer(ctx, b.data, nil); err != nil {
					fail.set(err)
				}
			}
		})
	}
	var mu sync.Mutex
	var idx index
	var total int64
	emit := func(segs []segment, data []byte) {
		mu.Lock()
		name := fmt.Sprintf("%s%06d", sp.BlobPrefix, len(idx.Blobs))
		idx.Blobs = append(idx.Blobs, blobIndex{name, segs})
		total += int64(len(data))
		mu.Unlock()
		blobs <- blob{name, data}
	}

	pieces := make(chan piece, 2*par)
	names := make(chan [2]any, 64)
	var producers sync.WaitGroup
	// Records: one page per piece.
	producers.Go(func() {
		filter := "PartitionKey eq '" + sp.Tenant + "'"
		pager := ts.NewClient("Assets").NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter})
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				fail.set(err)
				return
			}
			var data []byte
			for _, e := range page.Entities {
				data = append(append(data, e...), '\n')
			}
			pieces <- piece{segment{Records: true, Len: int64(len(data))}, data}
		}
	})
	// File listing feeds 4 downloaders.
	go func() {
		defer close(names)
		pager := bs.ServiceClient().NewContainerClient("assets").NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &[]string{sp.Tenant + "/"}[0]})
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				fail.set(err)
				return
			}
			for _, it := range page.Segment.BlobItems {
				names <- [2]any{*it.Name, *it.Properties.ContentLength}
			}
		}
	}()
	for range par {
		producers.Go(func() {
			for n := range names {
				name, size := n[0].(string), n[1].(int64)
				resp, err := bs.DownloadStream(ctx, "assets", name, nil)
				if err != nil {
					fail.set(err)
					continue
				}
				for off := int64(0); off < size; {
					k := min(size-off, chunkSize)
					buf := make([]byte, k)
					if _, err := io.ReadFull(resp.Body, buf); err != nil {
						fail.set(err)
						break
					}
					seg := segment{File: name, Size: size, Off: off, Len: k}
					if k == chunkSize {
						emit([]segment{seg}, buf)
					} else {
						pieces <- piece{seg, buf}
					}
					off += k
				}
				resp.Body.Close()
			}
		})
	}
	go func() { producers.Wait(); close(pieces) }()

	// The packer: tails and record pages into 8 MiB blobs; a piece that
	// straddles two blobs is two segments.
	var segs []segment
	cur := make([]byte, 0, chunkSize)
	for p := range pieces {
		data, seg := p.data, p.seg
		for len(data) > 0 {
			k := min(len(data), chunkSize-len(cur))
			part := seg
			part.Len = int64(k)
			segs = append(segs, part)
			seg.Off += int64(k)
			cur = append(cur, data[:k]...)
			data = data[k:]
			if len(cur) == chunkSize {
				emit(segs, cur)
				segs, cur = nil, make([]byte, 0, chunkSize)
			}
		}
	}
	if len(cur) > 0 {
		emit(segs, cur)
	}
	close(blobs)
	uploaders.Wait()
	took := time.Since(start)
	if err := fail.get(); err != nil {
		return result{}, err
	}
	b, err := json.Marshal(idx)
	if err != nil {
		return result{}, err
	}
	return result{Bytes: total, Seconds: took.Seconds()}, os.WriteFile(sp.IndexPath, b, 0o600)
}

// childLR: download LB's 8 MiB blobs 4 at a time (in order) while uploading
// each file as its own blob 4 at a time (UploadBuffer defaults) and
// upserting the records in transactions of 100, 4 at a time, into the
// fresh tenant sp.Target.
func childLR(ctx context.Context, sp spec) (result, error) {
	bs, ts, err := clients(sp)
	if err != nil {
		return result{}, err
	}
	raw, err := os.ReadFile(sp.IndexPath)
	if err != nil {
		return result{}, err
	}
	var idx index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return result{}, err
	}
	table, err := lrTarget(ctx, bs, ts)
	if err != nil {
		return result{}, err
	}
	start := time.Now()
	var fail errOnce

	// Downloads, 4 in flight, delivered in order.
	slots := make(chan chan []byte, par)
	go func() {
		defer close(slots)
		for _, b := range idx.Blobs {
			ch := make(chan []byte, 1)
			slots <- ch
			go func() {
				resp, err := bs.DownloadStream(ctx, scratch, b.Name, nil)
				if err != nil {
					fail.set(err)
					ch <- nil
					return
				}
				defer resp.Body.Close()
				data, err := io.ReadAll(resp.Body)
				if err != nil {
					fail.set(err)
				}
				ch <- data
			}()
		}
	}()
	type upload struct {
		name string
		data []byte
	}
	// File buffers are reused once uploaded (a fresh 128 MiB buffer per
	// file made LR's speed swing with the machine's page-fault cost), but
	// only for a file of about the same size: handing a 1 GiB buffer to a
	// 200 KiB file made the 10 GiB run allocate a new 1 GiB buffer for
	// every large file (12 GiB RSS, 30 MiB/s).
	var freeMu sync.Mutex
	var free [][]byte
	getBuf := func(n int64) []byte {
		freeMu.Lock()
		defer freeMu.Unlock()
		for i, b := range free {
			if c := int64(cap(b)); c >= n && c <= 2*n {
				free = append(free[:i], free[i+1:]...)
				return b[:n]
			}
		}
		return make([]byte, n)
	}
	putBuf := func(b []byte) {
		freeMu.Lock()
		free = append(free, b)
		freeMu.Unlock()
	}
	// Unbuffered: a file waits for an upload slot instead of adding
	// another whole file to the memory held.
	uploads := make(chan upload)
	batches := make(chan []aztables.TransactionAction, par)
	var workers sync.WaitGroup
	for range par {
		workers.Go(func() {
			for u := range uploads {
				if _, err := bs.UploadBuffer(ctx, lrContainer, u.name, u.data, nil); err != nil {
					fail.set(err)
				}
				putBuf(u.data)
			}
		})
		workers.Go(func() {
			for b := range batches {
				if _, err := table.SubmitTransaction(ctx, b, nil); err != nil {
					fail.set(err)
				}
			}
		})
	}

	// The blobs, cut back into files and record batches: each file's
	// segments are copied once, from the downloaded blob into its buffer
	// (allocated once, at the file's size).
	type partial struct {
		data []byte
		got  int64
	}
	var total int64
	files := map[string]*partial{}
	var batch []aztables.TransactionAction
	var recs []byte
	records := func(lines []byte) {
		for line := range bytes.SplitSeq(lines, []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			var e map[string]any
			if err := json.Unmarshal(line, &e); err != nil {
				fail.set(err)
				continue
			}
			for k := range e {
				if strings.HasPrefix(k, "odata.") || k == "Timestamp" {
					delete(e, k)
				}
			}
			e["PartitionKey"] = sp.Target
			body, err := json.Marshal(e)
			if err != nil {
				fail.set(err)
				continue
			}
			batch = append(batch, aztables.TransactionAction{ActionType: aztables.TransactionTypeInsertReplace, Entity: body})
			if len(batch) == 100 {
				batches <- batch
				batch = nil
			}
		}
	}
	prefix := sp.Tenant + "/"
	for _, b := range idx.Blobs {
		data := <-<-slots
		if data == nil {
			break
		}
		for _, s := range b.Segments {
			part := data[:s.Len]
			data = data[s.Len:]
			total += s.Len
			if s.Records {
				recs = append(recs, part...)
				if i := bytes.LastIndexByte(recs, '\n'); i >= 0 {
					records(recs[:i+1])
					recs = append(recs[:0], recs[i+1:]...)
				}
				continue
			}
			f := files[s.File]
			if f == nil {
				f = &partial{data: getBuf(s.Size)}
				files[s.File] = f
			}
			copy(f.data[s.Off:], part)
			if f.got += s.Len; f.got == s.Size {
				delete(files, s.File)
				uploads <- upload{sp.Target + "/" + strings.TrimPrefix(s.File, prefix), f.data}
			}
		}
	}
	if len(batch) > 0 {
		batches <- batch
	}
	close(uploads)
	close(batches)
	workers.Wait()
	took := time.Since(start)
	if len(files) > 0 || len(recs) > 0 {
		fail.set(fmt.Errorf("%d files incomplete, %d bytes of records unparsed", len(files), len(recs)))
	}
	return result{Bytes: total, Seconds: took.Seconds()}, fail.get()
}
