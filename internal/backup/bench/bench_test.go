package bench

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"fmt"
	"io"
	"iter"
	"log/slog"
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
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/azurite"
	"github.com/twinit/byok-backup/internal/backup"
	blobazure "github.com/twinit/byok-backup/internal/blobstore/azure"
	"github.com/twinit/byok-backup/internal/byok"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/catalog/aztable"
	"github.com/twinit/byok-backup/internal/credential"
	"github.com/twinit/byok-backup/internal/jobqueue"
	"github.com/twinit/byok-backup/internal/keycheck"
	"github.com/twinit/byok-backup/internal/keywrap"
	"github.com/twinit/byok-backup/internal/keywrap/keyvault"
	"github.com/twinit/byok-backup/internal/kvemu"
	"github.com/twinit/byok-backup/internal/lease"
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
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}} {
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

func runOnce(b *testing.B, size int64, records, par int) {
	ctx := context.Background()
	store := azurite.TestStart(b)
	cs := store.ConnectionString()
	tsvc, err := aztables.NewServiceClientFromConnectionString(cs, nil)
	must(b, err)
	bsvc, err := azblob.NewClientFromConnectionString(cs, nil)
	must(b, err)
	qsvc, err := azqueue.NewServiceClientFromConnectionString(cs, nil)
	must(b, err)
	table := func(name string) *aztables.Client {
		c := tsvc.NewClient(name)
		if _, err := c.CreateTable(ctx, nil); err != nil {
			b.Fatal(err)
		}
		return c
	}

	// Key Vault: the tenant's BYOK key and the platform key.
	emu := kvemu.TestStart(b)
	must(b, emu.CreateVault("platform-kv", "00000000-0000-4000-8000-000000000001", kvemu.AccessPolicy))
	_, err = emu.CreateKey("platform-kv", "platform", "RSA", 2048, nil)
	must(b, err)
	must(b, emu.Grant("platform-kv", kvemu.PlatformToken, "get", "wrapKey", "unwrapKey"))
	must(b, emu.CreateVault("cust-kv", entraA, kvemu.AccessPolicy))
	_, err = emu.CreateKey("cust-kv", "k", "RSA", 3072, nil)
	must(b, err)
	must(b, emu.Grant("cust-kv", kvemu.CustomerToken(appID, entraA), "get", "wrapKey", "unwrapKey"))
	creds, err := credential.New(credential.Options{Mode: credential.Emulator, AppClientID: appID, PlatformMode: credential.Emulator})
	must(b, err)
	kv, err := keyvault.New(keyvault.Options{Credentials: creds, ApplicationID: appID, CAPEM: emu.CAPEM()})
	must(b, err)
	keys, err := byok.New(byok.Options{Store: byok.NewTableStore(table("ByokSettings")),
		Validator:        byok.ValidatorFunc(func(ctx context.Context, ref keywrap.Ref) keycheck.Result { return keycheck.Validate(ctx, kv, ref) }),
		VaultURLTemplate: emu.URLTemplate(), AppClientID: appID, Logger: slog.New(slog.DiscardHandler)})
	must(b, err)
	_, err = keys.Configure(ctx, tenant, byok.Settings{KeyVaultName: "cust-kv", KeyName: "k", TenantID: entraA, FallbackToPlatformKey: true}, "")
	must(b, err)

	// The synthetic tenant.
	src := assets.New(tsvc.NewClient("Assets"), bsvc.ServiceClient().NewContainerClient("assets"), nil)
	must(b, src.Ensure(ctx))
	files := int(3 * size / maxF)
	t0 := time.Now()
	counts, err := src.Seed(ctx, tenant, assets.SeedOptions{Records: records, Files: files, FileSize: maxF, Seed: 1})
	must(b, err)
	seedTook := time.Since(t0)

	cat := aztable.New(table("Backups"), table("Restores"))
	blobs := blobazure.New(bsvc.ServiceClient().NewContainerClient("backups"))
	must(b, blobs.CreateContainer(ctx))
	newService := func(source backup.Source) *backup.Service {
		svc, err := backup.New(backup.Options{Source: source, Catalog: cat, Blobs: blobs, Wrapper: kv, Keys: keys,
			PlatformKey: keywrap.Ref{VaultURL: emu.VaultURL("platform-kv"), KeyName: "platform"},
			Leases:      lease.New(table(fmt.Sprintf("Leases%d", time.Now().UnixNano()%1e6)), nil),
			Queue:       jobqueue.New(qsvc), ChunkSize: chunk, Parallelism: par})
		must(b, err)
		return svc
	}
	run := func(svc *backup.Service) (*catalog.Backup, time.Duration) {
		row, err := svc.Request(ctx, tenant, catalog.ReasonManual)
		must(b, err)
		start := time.Now()
		must(b, svc.Run(ctx, jobqueue.BackupJob{Tenant: tenant, BackupID: row.BackupID, Reason: row.Reason, RequestedAt: row.RequestedAt}, 1))
		took := time.Since(start)
		row, err = cat.GetBackup(ctx, tenant, row.BackupID)
		must(b, err)
		if row.Status != catalog.StatusCompleted {
			b.Fatalf("backup %s: %+v", row.Status, row.Error)
		}
		return row, took
	}

	// 1. The backup, with the process's peak RSS reset first.
	emu.ResetRequests()
	rssBefore := resetPeakRSS(b)
	b.ResetTimer()
	row, took := run(newService(src))
	b.StopTimer()
	peak := peakRSS(b)
	wraps := emu.CountOps("cust-kv", "wrapKey") + emu.CountOps("platform-kv", "wrapKey")
	backupMBs := mbs(row.StoredBytes, took)

	// 2. Raw azblob upload of the same number of bytes, same chunk size and
	// parallelism, Content-MD5 on every request as our adapter sends it.
	rawTook := rawUpload(b, bsvc, row.StoredBytes, par)
	rawMBs := mbs(row.StoredBytes, rawTook)

	// 3. Records: a records-only backup against raw aztables reads.
	recRow, recTook := run(newService(noFiles{src}))
	t0 = time.Now()
	raw := rawTableRead(b, tsvc.NewClient("Assets"))
	rawRecTook := time.Since(t0)
	if raw != recRow.Records {
		b.Fatalf("raw read %d records, backup %d", raw, recRow.Records)
	}

	// 3b. Attribution: files alone through the pipeline, and the assets
	// reader's records alone (no encryption, no upload).
	fileRow, fileTook := run(newService(noRecords{src}))
	t0 = time.Now()
	var plain int64
	for _, err := range src.Records(ctx, tenant) {
		must(b, err)
		plain++
	}
	plainTook := time.Since(t0)

	// 4. rclone crypt over the same Azurite, same files, same parallelism.
	rclone := "not installed"
	if path, err := exec.LookPath("rclone"); err == nil {
		rclone = runRclone(b, path, store, src, par, row.Bytes)
	}

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
	fmt.Printf("  rclone crypt    %s\n", rclone)
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

func rawUpload(b *testing.B, bsvc *azblob.Client, total int64, par int) time.Duration {
	ctx := context.Background()
	c := bsvc.ServiceClient().NewContainerClient("raw")
	_, err := c.Create(ctx, nil)
	must(b, err)
	n := (total + chunk - 1) / chunk
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	for w := range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, chunk)
			_, _ = rand.Read(buf)
			for i := next.Add(1) - 1; i < n; i = next.Add(1) - 1 {
				data := buf
				if i == n-1 {
					data = buf[:total-i*chunk]
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

// runRclone downloads the tenant's files to a local folder and copies them
// with `rclone copy` into a crypt remote over an azureblob remote on the
// same Azurite, with --transfers = parallelism.
func runRclone(b *testing.B, path string, store *azurite.Instance, src *assets.Store, par int, total int64) string {
	ctx := context.Background()
	dir := b.TempDir()
	for f, err := range src.Files(ctx, tenant) {
		must(b, err)
		rc, err := src.OpenFile(ctx, tenant, f)
		must(b, err)
		p := filepath.Join(dir, "data", filepath.FromSlash(f.Path))
		must(b, os.MkdirAll(filepath.Dir(p), 0o755))
		out, err := os.Create(p)
		must(b, err)
		_, err = io.Copy(out, rc)
		rc.Close()
		must(b, err)
		must(b, out.Close())
	}
	obscured, err := exec.Command(path, "obscure", "bench-password").Output()
	must(b, err)
	env := append(os.Environ(),
		"RCLONE_CONFIG="+filepath.Join(dir, "rclone.conf"),
		"RCLONE_CONFIG_AZ_TYPE=azureblob",
		"RCLONE_CONFIG_AZ_ACCOUNT="+azurite.AccountName,
		"RCLONE_CONFIG_AZ_KEY="+azurite.AccountKey,
		"RCLONE_CONFIG_AZ_USE_EMULATOR=true",
		"RCLONE_CONFIG_AZ_ENDPOINT="+store.BlobURL(),
		"RCLONE_CONFIG_SECRET_TYPE=crypt",
		"RCLONE_CONFIG_SECRET_REMOTE=az:rclone-crypt",
		"RCLONE_CONFIG_SECRET_PASSWORD="+strings.TrimSpace(string(obscured)),
	)
	cmd := exec.Command(path, "copy", filepath.Join(dir, "data"), "secret:", "--transfers", strconv.Itoa(par), "--checkers", strconv.Itoa(par))
	cmd.Env = env
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		return fmt.Sprintf("failed: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return fmt.Sprintf("%.1f MB/s (%d MB of file content in %s, --transfers %d)", mbs(total, took), total/1e6, took.Round(time.Millisecond), par)
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
	if n >= 1<<30 && n%(1<<30) == 0 {
		return fmt.Sprintf("%dGiB", n>>30)
	}
	return fmt.Sprintf("%dMiB", n>>20)
}

func must(b testing.TB, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}
