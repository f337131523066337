package bench

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"fmt"
	assetsazure "github.com/twinit/byok-backup/internal/assets/azure"
	"io"
	"iter"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"

	"github.com/twinit/byok-backup/internal/app"
	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/backup"
	"github.com/twinit/byok-backup/internal/byok"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/catalog/aztable"
	"github.com/twinit/byok-backup/internal/config"
	"github.com/twinit/byok-backup/internal/devstack/azurite"
	"github.com/twinit/byok-backup/internal/devstack/kvemu"
	"github.com/twinit/byok-backup/internal/devstack/seed"
	"github.com/twinit/byok-backup/internal/jobqueue"
	"github.com/twinit/byok-backup/internal/keywrap"
	"github.com/twinit/byok-backup/internal/testing/fatal"
)

const (
	appID  = "4ab9f542-0305-4d62-94c9-69786fb5d1ec"
	entraA = "18a5c4b2-84a8-4acb-8db8-fc7073207415"
	tenant = "bench"
	chunk  = 4 << 20
	maxF   = 16 << 20 // largest seeded file; sizes cycle 0, ≤1 KiB, maxF/3, maxF
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v >= 0 {
		return v
	}
	return def
}

func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n, ok := strings.CutSuffix(s, u.suf); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			return v * u.m, err
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// BenchmarkBackup backs up a synthetic tenant per size in BENCH_SIZES
// (default 256MiB of files of mixed sizes plus BENCH_RECORDS records,
// default 50000) and reports every number of issue 6 point 6 in one run.
// Each size gets its own Azurite and Key Vault emulator.
func BenchmarkBackup(b *testing.B) {
	sizes := os.Getenv("BENCH_SIZES")
	if sizes == "" {
		sizes = "256MiB"
	}
	for _, s := range strings.Split(sizes, ",") {
		size, err := parseSize(s)
		if err != nil || size <= 0 {
			b.Fatalf("BENCH_SIZES: bad size %q", s)
		}
		b.Run("size="+strings.TrimSpace(s), func(b *testing.B) {
			for range b.N {
				runOnce(b, size, envInt("BENCH_RECORDS", 50000), envInt("BENCH_PARALLELISM", backup.DefaultParallelism))
			}
		})
	}
}

// rig is one Azurite, one Key Vault emulator with BYOK enabled for the
// tenant, the tenant's assets store and what a backup.Service needs.
type rig struct {
	store *azurite.Instance
	tsvc  *aztables.ServiceClient
	bsvc  *azblob.Client
	emu   *kvemu.Emulator
	src   *assetsazure.Store
	cat   *aztable.Store
	new   func(backup.Source) *backup.Service
	par   int
}

func newRig(b *testing.B, par int) *rig {
	ctx := context.Background()
	store := azurite.TestStart(b)
	cs := store.ConnectionString()
	tsvc, err := aztables.NewServiceClientFromConnectionString(cs, nil)
	must(b, err)
	bsvc, err := azblob.NewClientFromConnectionString(cs, nil)
	must(b, err)

	// Key Vault: the tenant's BYOK key (tagged for the tenant) and the
	// platform key.
	emu := kvemu.TestStart(b)
	must(b, emu.CreateVault("platform-kv", "00000000-0000-4000-8000-000000000001", kvemu.AccessPolicy))
	_, err = emu.CreateKey("platform-kv", "platform", "RSA", 2048, nil)
	must(b, err)
	must(b, emu.Grant("platform-kv", kvemu.PlatformToken, "get", "wrapKey", "unwrapKey"))
	must(b, emu.CreateVault("cust-kv", entraA, kvemu.AccessPolicy))
	_, err = emu.CreateKey("cust-kv", "k", "RSA", 3072, nil)
	must(b, err)
	must(b, emu.SetTags("cust-kv", "k", "", map[string]string{keywrap.DefaultOwnershipTag: tenant}))
	must(b, emu.Grant("cust-kv", kvemu.CustomerToken(appID, entraA), "get", "wrapKey", "unwrapKey"))
	ca := filepath.Join(b.TempDir(), "kv-ca.pem")
	must(b, emu.WriteCA(ca))

	// The app as the handler builds it; its HTTP edge is not used, so the
	// token settings only have to be valid.
	settings := map[string]string{
		"FUNCTIONS_CUSTOMHANDLER_PORT": "7072",
		"AzureWebJobsStorage":          cs,
		"PLATFORM_KEY_ID":              emu.VaultURL("platform-kv") + "keys/platform",
		"PLATFORM_CREDENTIAL":          config.CredEmulator,
		"BYOK_APP_CLIENT_ID":           appID,
		"BYOK_CREDENTIAL":              config.CredEmulator,
		"KEYVAULT_URL_TEMPLATE":        emu.URLTemplate(),
		"KEYVAULT_CA_FILE":             ca,
		"AUTH_ISSUER":                  "http://127.0.0.1/",
		"AUTH_AUDIENCE":                "api://bench",
		"AUTH_JWKS_URL":                "http://127.0.0.1/jwks.json",
		"BACKUP_CHUNK_SIZE":            strconv.Itoa(chunk),
		"BACKUP_PARALLELISM":           strconv.Itoa(par),
	}
	cfg, err := config.Load(func(k string) string { return settings[k] })
	must(b, err)
	a, err := app.New(ctx, cfg, app.Deps{})
	must(b, err)
	_, err = a.BYOK.Configure(ctx, tenant, byok.Settings{KeyVaultName: "cust-kv", KeyName: "k", TenantID: entraA, FallbackToPlatformKey: true}, "")
	must(b, err)
	must(b, a.Assets.Ensure(ctx))
	return &rig{store: store, tsvc: tsvc, bsvc: bsvc, emu: emu, src: a.Assets, cat: a.Catalog, par: par,
		new: func(source backup.Source) *backup.Service {
			o := a.BackupOptions()
			o.Source = source
			svc, err := backup.New(o)
			must(b, err)
			return svc
		}}
}

// run requests a backup of the tenant from source and runs it; the duration
// is the whole job's (row, lease, wrap, read, encrypt, upload, manifest, commit).
func (r *rig) run(b *testing.B, source backup.Source) (*catalog.Backup, time.Duration) {
	ctx := context.Background()
	svc := r.new(source)
	row, err := svc.Request(ctx, tenant, catalog.ReasonManual)
	must(b, err)
	start := time.Now()
	must(b, svc.Run(ctx, jobqueue.BackupJob{Tenant: tenant, BackupID: row.BackupID, Reason: row.Reason, RequestedAt: row.RequestedAt}, 1))
	took := time.Since(start)
	row, err = r.cat.GetBackup(ctx, tenant, row.BackupID)
	must(b, err)
	if row.Status != catalog.StatusCompleted {
		b.Fatalf("backup %s: %+v", row.Status, row.Error)
	}
	return row, took
}

func runOnce(b *testing.B, size int64, records, par int) {
	ctx := context.Background()
	r := newRig(b, par)
	src := r.src

	// The synthetic tenant.
	files := int(3 * size / maxF)
	t0 := time.Now()
	counts, err := seed.Tenant(ctx, src, tenant, seed.Options{Records: records, Files: files, FileSize: maxF, Seed: 1})
	must(b, err)
	seedTook := time.Since(t0)

	// 1. The backup, with the process's peak RSS reset first.
	r.emu.ResetRequests()
	rssBefore := resetPeakRSS(b)
	b.ResetTimer()
	row, took := r.run(b, src)
	b.StopTimer()
	peak := peakRSS(b)
	wraps := r.emu.CountOps("cust-kv", "wrapKey") + r.emu.CountOps("platform-kv", "wrapKey")
	backupMBs := mbs(row.StoredBytes, took)

	// 2. Raw azblob upload of the same number of bytes, same chunk size and
	// parallelism, Content-MD5 on every request as our adapter sends it.
	rawTook := rawUpload(b, r.bsvc, "raw", row.StoredBytes, chunk, par)
	rawMBs := mbs(row.StoredBytes, rawTook)

	// 3. Records: a records-only backup against raw aztables reads.
	recRow, recTook := r.run(b, noFiles{src})
	t0 = time.Now()
	raw := rawTableRead(b, r.tsvc.NewClient("Assets"))
	rawRecTook := time.Since(t0)
	if raw != recRow.Records {
		b.Fatalf("raw read %d records, backup %d", raw, recRow.Records)
	}

	// 3b. Attribution: files alone through the pipeline, and the assets
	// reader's records alone (no encryption, no upload).
	fileRow, fileTook := r.run(b, noRecords{src})
	t0 = time.Now()
	var plain int64
	for _, err := range src.Records(ctx, tenant) {
		must(b, err)
		plain++
	}
	plainTook := time.Since(t0)

	// 4. rclone crypt over the same Azurite, same files, same parallelism,
	// and the files-only backup reading the same local copy rclone reads.
	rc := rcloneRun(b, r, row.Bytes)

	b.ReportMetric(backupMBs, "backup-MB/s")
	b.ReportMetric(rawMBs, "raw-upload-MB/s")
	b.ReportMetric(backupMBs/rawMBs, "ratio")
	b.ReportMetric(float64(recRow.Records)/recTook.Seconds(), "backup-records/s")
	b.ReportMetric(float64(raw)/rawRecTook.Seconds(), "raw-table-records/s")
	b.ReportMetric(mbs(fileRow.StoredBytes, fileTook), "files-only-MB/s")
	b.ReportMetric(float64(peak)/1024, "peak-RSS-MiB")
	b.ReportMetric(float64(wraps), "wraps/backup")
	fmt.Printf("\nsize %s: %d records, %d files, %.1f MiB of file content (seeded in %s), chunk %d MiB, parallelism %d\n",
		humanSize(size), counts.Records, counts.Files, float64(counts.Bytes)/(1<<20), seedTook.Round(time.Second), chunk>>20, par)
	fmt.Printf("  backup          %8.1f MB/s  (%d MB stored in %d chunks, %s, key %s)\n", backupMBs, row.StoredBytes/1e6, row.Chunks, took.Round(time.Millisecond), row.KeySource)
	fmt.Printf("  raw azblob put  %8.1f MB/s  ratio %.2f (goal >= 0.9)\n", rawMBs, backupMBs/rawMBs)
	fmt.Printf("  records         %8.0f /s    raw aztables read %.0f /s, ratio %.2f\n",
		float64(recRow.Records)/recTook.Seconds(), float64(raw)/rawRecTook.Seconds(), rawRecTook.Seconds()/recTook.Seconds())
	fmt.Printf("  files only      %8.1f MB/s  ratio to raw put %.2f; assets reader alone %.0f records/s\n",
		mbs(fileRow.StoredBytes, fileTook), mbs(fileRow.StoredBytes, fileTook)/rawMBs, float64(plain)/plainTook.Seconds())
	fmt.Printf("  peak RSS        %8.1f MiB during the backup (VmHWM reset before it; RSS before %.1f MiB)\n", float64(peak)/1024, float64(rssBefore)/1024)
	fmt.Printf("  Key Vault wraps %8d per backup\n", wraps)
	rc.print("files-only backup", mbs(fileRow.Bytes, fileTook))
}

// BenchmarkSmallFiles is the small-files case: a tenant of exactly
// BENCH_SMALLFILES files (default 2000) of BENCH_SMALLFILE_SIZE each
// (default 256KiB) and BENCH_SMALLFILE_RECORDS records (default 0), backed
// up by the pipeline and copied by rclone crypt, both with parallelism
// BENCH_PARALLELISM.
func BenchmarkSmallFiles(b *testing.B) {
	n := envInt("BENCH_SMALLFILES", 2000)
	s := os.Getenv("BENCH_SMALLFILE_SIZE")
	if s == "" {
		s = "256KiB"
	}
	size, err := parseSize(s)
	if err != nil || size <= 0 || n <= 0 {
		b.Fatalf("BENCH_SMALLFILES=%d BENCH_SMALLFILE_SIZE=%q: want a positive count and size", n, s)
	}
	b.Run(fmt.Sprintf("files=%d,size=%s", n, strings.TrimSpace(s)), func(b *testing.B) {
		for range b.N {
			runSmall(b, n, size, envInt("BENCH_SMALLFILE_RECORDS", 0), envInt("BENCH_PARALLELISM", backup.DefaultParallelism))
		}
	})
}

func runSmall(b *testing.B, n int, size int64, records, par int) {
	ctx := context.Background()
	r := newRig(b, par)
	t0 := time.Now()
	if records > 0 {
		_, err := seed.Tenant(ctx, r.src, tenant, seed.Options{Records: records, Seed: 1})
		must(b, err)
	}
	seedFiles(b, r.src, n, size, par)
	seedTook := time.Since(t0)
	total := int64(n) * size

	b.ResetTimer()
	row, took := r.run(b, r.src)
	b.StopTimer()
	if row.Files != int64(n) || row.Bytes != total {
		b.Fatalf("backup holds %d files, %d bytes; seeded %d, %d", row.Files, row.Bytes, n, total)
	}
	backupMBs := mbs(row.Bytes, took)

	// Raw puts of the same bytes: as the chunks our pipeline writes, and as
	// one blob per file as rclone writes them.
	chunkMBs := mbs(total, rawUpload(b, r.bsvc, "raw-chunks", total, chunk, par))
	fileMBs := mbs(total, rawUpload(b, r.bsvc, "raw-files", total, size, par))

	rc := rcloneRun(b, r, total)

	b.ReportMetric(backupMBs, "backup-MB/s")
	b.ReportMetric(chunkMBs, "raw-upload-MB/s")
	b.ReportMetric(fileMBs, "raw-per-file-MB/s")
	fmt.Printf("\n%d files of %s (%.1f MiB) and %d records (seeded in %s), chunk %d MiB, parallelism %d\n",
		n, humanSize(size), float64(total)/(1<<20), records, seedTook.Round(time.Second), chunk>>20, par)
	fmt.Printf("  backup          %8.1f MB/s  (file content / whole job: %d MB in %d chunks, %s)\n", backupMBs, total/1e6, row.Chunks, took.Round(time.Millisecond))
	fmt.Printf("  raw azblob put  %8.1f MB/s  as %d MiB blobs (what the backup writes), ratio %.2f\n", chunkMBs, chunk>>20, backupMBs/chunkMBs)
	fmt.Printf("  raw azblob put  %8.1f MB/s  one blob per file (what rclone writes), ratio %.2f\n", fileMBs, backupMBs/fileMBs)
	rc.print("backup", backupMBs)
}

// seedFiles writes n files of exactly size random bytes, par at a time.
func seedFiles(b *testing.B, src *assetsazure.Store, n int, size int64, par int) {
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, size)
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				_, _ = rand.Read(buf)
				f := assets.File{Path: fmt.Sprintf("small/%02d/file-%05d.bin", i%16, i), Size: size, ContentType: "application/octet-stream"}
				if err := src.PutFile(ctx, tenant, f, bytes.NewReader(buf)); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		b.Fatal(err)
	}
}

// noRecords hides the tenant's records, for the files-only measurement.
type noRecords struct{ backup.Source }

func (noRecords) Records(context.Context, string) iter.Seq2[assets.Record, error] {
	return func(func(assets.Record, error) bool) {}
}

// noFiles hides the tenant's files, for the records-only measurement.
type noFiles struct{ backup.Source }

func (noFiles) Files(context.Context, string) iter.Seq2[assets.File, error] {
	return func(func(assets.File, error) bool) {}
}

// rawUpload puts total bytes as blobs of blobSize (the last one shorter)
// into container, par at a time, Content-MD5 on every request.
func rawUpload(b *testing.B, bsvc *azblob.Client, container string, total, blobSize int64, par int) time.Duration {
	ctx := context.Background()
	c := bsvc.ServiceClient().NewContainerClient(container)
	_, err := c.Create(ctx, nil)
	must(b, err)
	n := (total + blobSize - 1) / blobSize
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	for w := range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, blobSize)
			_, _ = rand.Read(buf)
			for i := next.Add(1) - 1; i < n; i = next.Add(1) - 1 {
				data := buf
				if i == n-1 {
					data = buf[:total-i*blobSize]
				}
				sum := md5.Sum(data)
				_, err := c.NewBlockBlobClient(fmt.Sprintf("w%d/%010d", w, i)).Upload(ctx, streaming.NopCloser(bytes.NewReader(data)),
					&blockblob.UploadOptions{TransactionalValidation: blob.TransferValidationTypeMD5(sum[:]),
						HTTPHeaders: &blob.HTTPHeaders{BlobContentMD5: sum[:]}})
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

func rawTableRead(b *testing.B, t *aztables.Client) int64 {
	filter := "PartitionKey eq '" + tenant + "'"
	top := int32(1000)
	pager := t.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter, Top: &top})
	var n int64
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		must(b, err)
		n += int64(len(page.Entities))
	}
	return n
}

// rcloneResult holds the rclone comparison; installed is false when rclone
// is not on PATH (the benchmark then reports that and nothing else).
type rcloneResult struct {
	installed       bool
	par             int
	total           int64
	same, def       time.Duration // --transfers = parallelism; rclone's defaults
	sameErr, defErr string
	local           time.Duration // files-only backup reading the local copy
}

// rcloneRun downloads the tenant's files to a local folder, then copies them
// with `rclone copy` into a crypt remote over an azureblob remote on the
// same Azurite, once with --transfers and --checkers = parallelism and once
// with rclone's defaults (--transfers 4 --checkers 8), each into its own
// fresh folder so nothing is skipped as already there. It also runs a
// files-only backup whose source reads that same local copy, so the two
// tools read the same disk and write the same Azurite.
func rcloneRun(b *testing.B, r *rig, total int64) rcloneResult {
	res := rcloneResult{par: r.par, total: total}
	path, err := exec.LookPath("rclone")
	if err != nil {
		return res
	}
	res.installed = true
	ctx := context.Background()
	dir := b.TempDir()
	data := filepath.Join(dir, "data")
	var files []assets.File
	for f, err := range r.src.Files(ctx, tenant) {
		must(b, err)
		rc, err := r.src.OpenFile(ctx, tenant, f)
		must(b, err)
		p := filepath.Join(data, filepath.FromSlash(f.Path))
		must(b, os.MkdirAll(filepath.Dir(p), 0o755))
		out, err := os.Create(p)
		must(b, err)
		_, err = io.Copy(out, rc)
		rc.Close()
		must(b, err)
		must(b, out.Close())
		files = append(files, f)
	}

	row, took := r.run(b, localFiles{dir: data, files: files})
	if row.Bytes != total {
		b.Fatalf("local-source backup holds %d bytes, want %d", row.Bytes, total)
	}
	res.local = took

	obscured, err := exec.Command(path, "obscure", "bench-password").Output()
	must(b, err)
	env := append(os.Environ(),
		"RCLONE_CONFIG="+filepath.Join(dir, "rclone.conf"),
		"RCLONE_CONFIG_AZ_TYPE=azureblob",
		"RCLONE_CONFIG_AZ_ACCOUNT="+azurite.AccountName,
		"RCLONE_CONFIG_AZ_KEY="+azurite.AccountKey,
		"RCLONE_CONFIG_AZ_USE_EMULATOR=true",
		"RCLONE_CONFIG_AZ_ENDPOINT="+r.store.BlobURL(),
		"RCLONE_CONFIG_SECRET_TYPE=crypt",
		"RCLONE_CONFIG_SECRET_REMOTE=az:rclone-crypt",
		"RCLONE_CONFIG_SECRET_PASSWORD="+strings.TrimSpace(string(obscured)),
	)
	copyTo := func(dst string, args ...string) (time.Duration, string) {
		cmd := exec.Command(path, append([]string{"copy", data, "secret:" + dst}, args...)...)
		cmd.Env = env
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			return 0, fmt.Sprintf("failed: %v: %s", err, strings.TrimSpace(string(out)))
		}
		return time.Since(start), ""
	}
	p := strconv.Itoa(r.par)
	res.same, res.sameErr = copyTo("same", "--transfers", p, "--checkers", p)
	res.def, res.defErr = copyTo("default")
	return res
}

// print reports rclone's MB/s of file content and the ratio of ours (name,
// MB/s of file content) to it, then the files-only backup from local disk.
func (r rcloneResult) print(name string, ours float64) {
	if !r.installed {
		fmt.Printf("  rclone crypt    not installed\n")
		return
	}
	line := func(label string, took time.Duration, errText string) {
		if errText != "" {
			fmt.Printf("  %-15s %s\n", label, errText)
			return
		}
		fmt.Printf("  %-15s %8.1f MB/s  (%s); %s / rclone %.2fx, from local disk %.2fx\n",
			label, mbs(r.total, took), took.Round(time.Millisecond), name, ours/mbs(r.total, took), mbs(r.total, r.local)/mbs(r.total, took))
	}
	line(fmt.Sprintf("rclone -t %d", r.par), r.same, r.sameErr)
	line("rclone default", r.def, r.defErr)
	fmt.Printf("  files-only backup reading the local copy rclone reads: %.1f MB/s (%s)\n", mbs(r.total, r.local), r.local.Round(time.Millisecond))
}

// localFiles is a backup.Source whose files come from a local folder (the
// copy rclone reads) instead of Azurite, and which has no records.
type localFiles struct {
	dir   string
	files []assets.File
}

func (localFiles) Records(context.Context, string) iter.Seq2[assets.Record, error] {
	return func(func(assets.Record, error) bool) {}
}

func (l localFiles) Files(context.Context, string) iter.Seq2[assets.File, error] {
	return func(yield func(assets.File, error) bool) {
		for _, f := range l.files {
			if !yield(f, nil) {
				return
			}
		}
	}
}

func (l localFiles) OpenFile(_ context.Context, _ string, f assets.File) (io.ReadCloser, error) {
	return os.Open(filepath.Join(l.dir, filepath.FromSlash(f.Path)))
}

// resetPeakRSS resets VmHWM (Linux: "5" to clear_refs) and returns VmRSS in KiB.
func resetPeakRSS(b *testing.B) int64 {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Fatalf("can't reset the peak RSS: %v", err)
	}
	return procStatus(b, "VmRSS:")
}

// peakRSS is VmHWM in KiB.
func peakRSS(b *testing.B) int64 { return procStatus(b, "VmHWM:") }

func procStatus(b *testing.B, field string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	must(b, err)
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			must(b, err)
			return n
		}
	}
	b.Fatalf("%s missing from /proc/self/status", field)
	return 0
}

func mbs(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }

func humanSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n%(1<<20) != 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dMiB", n>>20)
}

// must keeps the call sites short; the helper itself is shared.
var must = fatal.IfErr
