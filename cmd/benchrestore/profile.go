package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/blobstore"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/devstack/azurite"
)

// profiling holds the flags of the profiling run (docs/BENCHMARKS.md,
// "Restore profile (issue 13)").
type profiling struct {
	smallFiles, largeFiles int
	smallSize, largeSize   int64
	cpu, block             string
	count                  bool
}

// start begins the CPU and blocking profiles the flags ask for; the
// returned function stops them and writes the files.
func (p profiling) start() (func() error, error) {
	var cpuF *os.File
	if p.cpu != "" {
		f, err := os.Create(p.cpu)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, err
		}
		cpuF = f
	}
	if p.block != "" {
		// Every blocking event of 10 µs or more; the restore's waits on
		// Azure are milliseconds.
		runtime.SetBlockProfileRate(10_000)
	}
	return func() error {
		if cpuF != nil {
			pprof.StopCPUProfile()
			if err := cpuF.Close(); err != nil {
				return err
			}
		}
		if p.block != "" {
			f, err := os.Create(p.block)
			if err != nil {
				return err
			}
			if err := pprof.Lookup("block").WriteTo(f, 0); err != nil {
				f.Close()
				return err
			}
			runtime.SetBlockProfileRate(0)
			return f.Close()
		}
		return nil
	}, nil
}

// seedFixed writes nRecords records (the seed package's, through a
// one-file seed) and fixed-size files of PRNG bytes: the shape issue 13
// measures (many small files, a few large ones).
func seedFixed(ctx context.Context, s assets.Store, nRecords int, p profiling) (assets.Counts, error) {
	var c assets.Counts
	w, err := s.NewRecordWriter(tenant)
	if err != nil {
		return c, err
	}
	for i := range nRecords {
		r := assets.Record{RowKey: fmt.Sprintf("asset-%06d", i), Properties: []assets.Property{
			{Name: "Name", Type: assets.TypeString, Value: fmt.Sprintf("Pump %d", i)},
			{Name: "Floor", Type: assets.TypeInt32, Value: int32(i % 40)},
			{Name: "Serial", Type: assets.TypeInt64, Value: int64(i) * 7919},
			{Name: "Active", Type: assets.TypeBoolean, Value: i%2 == 0},
		}}
		r.SortProperties()
		if err := w.Put(ctx, r); err != nil {
			return c, err
		}
	}
	if err := w.Flush(ctx); err != nil {
		return c, err
	}
	c.Records = w.Written()
	put := func(i int, size int64) error {
		f := assets.File{Path: fmt.Sprintf("twins/%03d/asset-%05d.bin", i%7, i), Size: size, ContentType: "application/octet-stream"}
		if err := s.PutFile(ctx, tenant, f, io.LimitReader(&counterReader{n: uint64(i)}, size)); err != nil {
			return err
		}
		c.Files++
		c.Bytes += size
		return nil
	}
	for i := range p.smallFiles {
		if err := put(i, p.smallSize); err != nil {
			return c, err
		}
	}
	for i := range p.largeFiles {
		if err := put(p.smallFiles+i, p.largeSize); err != nil {
			return c, err
		}
	}
	return c, nil
}

// counterReader is an endless stream of cheap, file-specific bytes.
type counterReader struct{ n uint64 }

func (r *counterReader) Read(b []byte) (int, error) {
	for i := range b {
		r.n = r.n*6364136223846793005 + 1442695040888963407
		b[i] = byte(r.n >> 56)
	}
	return len(b), nil
}

// requestCounter counts the requests it proxies to Azurite by service,
// method, container or table, and operation (comp=…), e.g.
// "blob PUT assets block".
type requestCounter struct {
	mu sync.Mutex
	n  map[string]int64
	// t0 is the last Reset; first and last are each kind's first and last
	// request since, for when in the restore each kind ran.
	t0          time.Time
	first, last map[string]time.Duration
	srvs        []*http.Server
}

func (c *requestCounter) Reset() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.n = map[string]int64{}
	c.t0, c.first, c.last = time.Now(), map[string]time.Duration{}, map[string]time.Duration{}
	c.mu.Unlock()
}

// Snapshot maps each kind to "count @ first–last s" since the last Reset.
func (c *requestCounter) Snapshot() map[string]string {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]string, len(c.n))
	for k, v := range c.n {
		out[k] = fmt.Sprintf("%d @ %.2f–%.2f s", v, c.first[k].Seconds(), c.last[k].Seconds())
	}
	return out
}

func (c *requestCounter) Close() {
	for _, s := range c.srvs {
		_ = s.Close()
	}
}

func (c *requestCounter) add(service string, r *http.Request) {
	// Path: /devstoreaccount1/<container or table>[/blob...]
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 3)
	where := ""
	if len(parts) > 1 {
		where = parts[1]
		if i := strings.IndexByte(where, '('); i >= 0 {
			where = where[:i]
		}
	}
	op := r.URL.Query().Get("comp")
	if op == "" {
		op = "-"
	}
	k := fmt.Sprintf("%s %s %s %s", service, r.Method, where, op)
	c.mu.Lock()
	c.n[k]++
	at := time.Since(c.t0)
	if _, ok := c.first[k]; !ok {
		c.first[k] = at
	}
	c.last[k] = at
	c.mu.Unlock()
}

// startCountingProxy puts a counting reverse proxy in front of Azurite's
// blob and table endpoints and returns a connection string using it (the
// queue endpoint stays direct).
func startCountingProxy(az *azurite.Instance) (*requestCounter, string, error) {
	c := &requestCounter{}
	c.Reset()
	front := func(service, backend string) (string, error) {
		u, err := url.Parse(backend)
		if err != nil {
			return "", err
		}
		// The account is in the request path already.
		u.Path = ""
		rp := httputil.NewSingleHostReverseProxy(u)
		rp.Transport = &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c.add(service, r)
			rp.ServeHTTP(w, r)
		}), ReadHeaderTimeout: time.Minute}
		c.srvs = append(c.srvs, srv)
		go func() { _ = srv.Serve(ln) }()
		return fmt.Sprintf("http://%s/%s", ln.Addr(), azurite.AccountName), nil
	}
	blob, err := front("blob", az.BlobURL())
	if err != nil {
		return nil, "", err
	}
	table, err := front("table", az.TableURL())
	if err != nil {
		c.Close()
		return nil, "", err
	}
	cs := fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;QueueEndpoint=%s;TableEndpoint=%s;",
		azurite.AccountName, azurite.AccountKey, blob, az.QueueURL(), table)
	return c, cs, nil
}

// lr is issue 13's LR for the fixed-size shape: concurrently, download
// every chunk of the backup parallelism at a time, upload every seeded
// file as its own blob parallelism at a time (assets PutFile: one Put Blob
// up to its block size), and upsert the records in transactions of 100,
// parallelism transactions at a time; into a fresh tenant.
func lr(ctx context.Context, from blobstore.Store, to assets.Store, b *catalog.Backup, nRecords, parallelism int, p profiling, target string) (time.Duration, error) {
	var names []string
	if err := from.List(ctx, b.Tenant+"/"+b.BackupID+"/", func(i blobstore.Info) error {
		names = append(names, i.Name)
		return nil
	}); err != nil {
		return 0, err
	}
	type file struct {
		i    int
		size int64
	}
	var files []file
	for i := range p.smallFiles {
		files = append(files, file{i, p.smallSize})
	}
	for i := range p.largeFiles {
		files = append(files, file{p.smallFiles + i, p.largeSize})
	}
	var wg sync.WaitGroup
	var first atomic.Value
	fail := func(err error) {
		if err != nil {
			first.CompareAndSwap(nil, err)
		}
	}
	start := time.Now()
	wg.Go(func() {
		sem := make(chan struct{}, parallelism)
		var inner sync.WaitGroup
		for _, n := range names {
			sem <- struct{}{}
			inner.Go(func() {
				defer func() { <-sem }()
				_, err := from.GetBlob(ctx, n)
				fail(err)
			})
		}
		inner.Wait()
	})
	wg.Go(func() {
		sem := make(chan struct{}, parallelism)
		var inner sync.WaitGroup
		for _, f := range files {
			sem <- struct{}{}
			inner.Go(func() {
				defer func() { <-sem }()
				af := assets.File{Path: fmt.Sprintf("twins/%03d/asset-%05d.bin", f.i%7, f.i), Size: f.size, ContentType: "application/octet-stream"}
				fail(to.PutFile(ctx, target, af, io.LimitReader(&counterReader{n: uint64(f.i)}, f.size)))
			})
		}
		inner.Wait()
	})
	for w := range parallelism {
		wg.Go(func() {
			rw, err := to.NewRecordWriter(target)
			if err != nil {
				fail(err)
				return
			}
			// Batches of 100 consecutive records, dealt round robin.
			for i := w * 100; i < nRecords; i += parallelism * 100 {
				for j := i; j < min(i+100, nRecords); j++ {
					if err := rw.Put(ctx, assets.Record{RowKey: fmt.Sprintf("asset-%06d", j), Properties: []assets.Property{
						{Name: "Name", Type: assets.TypeString, Value: fmt.Sprintf("Pump %d", j)},
					}}); err != nil {
						fail(err)
						return
					}
				}
				fail(rw.Flush(ctx))
			}
		})
	}
	wg.Wait()
	if err, _ := first.Load().(error); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}
