// Command bench measures the project's backup and restore next to the
// limits issue 13 defines, in one run, on a private Azurite and Key Vault
// emulator (docs/BENCHMARKS.md, "The benchmark command"):
//
//	go run ./cmd/bench            # 6 × 128 MiB + 1,000 × 256 KiB files, 5,000 records
//	go run ./cmd/bench -runs 3    # min/median/max over three runs
//	go run ./cmd/bench -short     # a few MiB, for CI's smoke test
//
// Phases, each in its own child process so its peak RSS is the child's
// (rusage ru_maxrss of that process alone):
//
//	LB       raw backup limit: list records, download files 4 at a time,
//	         pack the bytes into 8 MiB blobs uploaded 4 at a time, pipelined
//	backup   the project's backup (chunk 8 MiB, parallelism 4, customer key)
//	LR       raw restore limit: download LB's 8 MiB blobs 4 at a time while
//	         uploading each file as its own blob 4 at a time (UploadBuffer
//	         defaults) and upserting records in transactions of 100, 4 at a time
//	restore  the project's restore, replace mode into a fresh tenant
//	B2       rclone copy --transfers 4 of az:assets/<tenant> through a crypt
//	         remote into Azurite
//
// MiB/s are over the tenant's file bytes for every phase.
package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"github.com/twinit/byok-backup/internal/app"
	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/azerr"
	"github.com/twinit/byok-backup/internal/byok"
	"github.com/twinit/byok-backup/internal/config"
	"github.com/twinit/byok-backup/internal/devstack/azurite"
	"github.com/twinit/byok-backup/internal/devstack/kvemu"
	"github.com/twinit/byok-backup/internal/devstack/seed"
	"github.com/twinit/byok-backup/internal/keywrap"
)

const (
	appID       = "4ab9f542-0305-4d62-94c9-69786fb5d1ec"
	entraTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	tenant      = "bench"
	chunkSize   = 8 << 20
	par         = 4
	// childEnv names the phase a child process runs; childSpec the JSON file
	// with everything it needs.
	childEnv  = "BYOK_BENCH_CHILD"
	childSpec = "BYOK_BENCH_SPEC"
)

// phases in the order each run measures them.
var phases = []string{"LB", "backup", "LR", "restore", "B2"}

// Size is the seeded tenant.
type Size struct {
	BigFiles, SmallFiles int
	BigSize, SmallSize   int64
	Records              int
	// SpoolMB, when set, is the restore's RESTORE_SPOOL_LIMIT_MB: the local
	// disk that lets it write each small file in one request after
	// verification (3.9 GiB of them at 10 GiB; beyond the limit they are
	// staged and committed, two requests each).
	SpoolMB int
	// SharedAzurite keeps the service's own tables (catalog, leases, BYOK
	// settings, audit) in the Azurite that holds the tenant's data, as
	// one storage account would. By default they get an Azurite of their
	// own: Azurite writes its whole table database to disk after any
	// change, so beside 200,000 records every heartbeat or progress row
	// costs it seconds of CPU (cmd/azuritesave), a cost Table storage does
	// not have and LB and LR, which keep no bookkeeping, never pay.
	SharedAzurite bool
	// Reclaim deletes what LB, LR, restore and B2 wrote once it is no
	// longer needed (see reclaim) and restarts Azurite,
	// which frees deleted blobs' space only at start and every 10 minutes.
	// Without it each run meets a fuller Azurite than the one before (its
	// per-request cost grows with its data: the second of three runs was
	// 10–30 % slower in every phase), and at 10 GiB five copies don't fit
	// the disk.
	Reclaim bool
}

// Full is the size; Large its 10 GiB tenant (a few 1 GiB files,
// 20,000 small files, 200,000 records); Short a few MiB for CI.
var (
	Full  = Size{BigFiles: 6, BigSize: 128 << 20, SmallFiles: 1000, SmallSize: 256 << 10, Records: 5000}
	Large = Size{BigFiles: 6, BigSize: 1 << 30, SmallFiles: 20000, SmallSize: 200 << 10, Records: 200000, SpoolMB: 4096}
	Short = Size{BigFiles: 2, BigSize: 2 << 20, SmallFiles: 20, SmallSize: 64 << 10, Records: 300}
)

// Diag asks the children for diagnostics; neither changes what is timed
// beyond the profiler's own cost.
type Diag struct {
	Verbose    bool
	ProfileDir string
	// Phases, when set, runs only these (a diagnostic shortcut: the
	// issue's figures come from all five in one run).
	Phases []string
}

func main() {
	if phase := os.Getenv(childEnv); phase != "" {
		os.Exit(childMain(phase))
	}
	short := flag.Bool("short", false, "a few MiB instead of the full size (CI smoke)")
	runs := flag.Int("runs", 1, "runs of every phase; the table shows min/median/max")
	large := flag.Bool("10g", false, "the 10 GiB tenant: 6 × 1 GiB + 20,000 × 200 KiB files, 200,000 records")
	verbose := flag.Bool("v", false, "children log at Info (backup's and restore's own step timings) on stderr")
	profile := flag.String("profile", "", "directory for a CPU and an allocation profile of each child phase (<phase>-<run>.cpu.pb, .heap.pb)")
	shared := flag.Bool("shared-azurite", false, "keep the service's own tables (catalog, leases, …) in the tenant data's Azurite instead of an Azurite of their own")
	reclaimFlag := flag.Bool("reclaim", true, "free each phase's output and restart Azurite between phases, so every phase meets the same Azurite (its per-request cost grows with what it holds) and the disk holds at most three copies")
	shape := flag.String("shape", "", "a diagnostic size instead of the issue's: BIGxMiB+SMALLxKiB+RECORDS, e.g. 2x128+5000x200+100000 (spool limit 4096 MiB)")
	only := flag.String("phases", strings.Join(phases, ","), "the phases to run (LR needs LB, restore needs backup); ratios need both sides")
	flag.Parse()
	size := Full
	switch {
	case *short:
		size = Short
	case *large:
		size = Large
	case *shape != "":
		var err error
		if size, err = parseShape(*shape); err != nil {
			fmt.Fprintln(os.Stderr, "bench: -shape:", err)
			os.Exit(2)
		}
	}
	size.Reclaim, size.SharedAzurite = *reclaimFlag, *shared
	// Interrupted, the children are killed (CommandContext) and Azurite and
	// the emulator stopped by Run's defers.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, os.Stdout, size, *runs, Diag{Verbose: *verbose, ProfileDir: *profile, Phases: strings.Split(*only, ",")}); err != nil {
		stop()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// parseShape reads -shape: BIGxMiB+SMALLxKiB+RECORDS.
func parseShape(v string) (Size, error) {
	var s Size
	var bigMiB, smallKiB int64
	if _, err := fmt.Sscanf(v, "%dx%d+%dx%d+%d", &s.BigFiles, &bigMiB, &s.SmallFiles, &smallKiB, &s.Records); err != nil {
		return s, fmt.Errorf("%q is not BIGxMiB+SMALLxKiB+RECORDS: %w", v, err)
	}
	if s.BigFiles < 0 || s.SmallFiles < 0 || s.Records < 0 || bigMiB <= 0 || smallKiB <= 0 {
		return s, fmt.Errorf("%q: counts must be ≥ 0 and sizes > 0", v)
	}
	s.BigSize, s.SmallSize, s.SpoolMB = bigMiB<<20, smallKiB<<10, 4096
	return s, nil
}

// spec is what a child needs; written once per run by the parent.
type spec struct {
	Settings map[string]string
	Conn     string
	// ServiceConn is the service tables' Azurite (app.Deps.ServiceTables);
	// empty = Conn's.
	ServiceConn string
	Tenant      string
	Target      string // restore's and LR's fresh tenant
	BackupID    string // restore's backup
	IndexPath   string // LB writes, LR reads: the layout of LB's blobs
	BlobPrefix  string // LB's blobs in the scratch container
	Verbose     bool   // children log at Info (the jobs' own timings)
	ProfileDir  string // when set, each child writes <phase>-<run>.cpu.pb there
	Run         int
}

// result is a child's answer on stdout.
type result struct {
	Bytes    int64
	Seconds  float64
	BackupID string `json:",omitempty"`
}

// measured is one phase of one run.
type measured struct {
	seconds float64
	rssKiB  int64
	// azurite is Azurite's CPU time over the phase (its process's whole
	// run, start to end of the child): the local limit.
	azurite time.Duration
	// service is the service tables' Azurite's CPU time over the phase.
	service time.Duration
}

// serviceCPU is the measured line's tail for the service tables' Azurite.
func serviceCPU(svc *azurite.Instance, d time.Duration) string {
	if svc == nil {
		return ""
	}
	return fmt.Sprintf(" + %.1f s (service tables)", d.Seconds())
}

// Run starts the stack, seeds the tenant and measures every phase runs
// times, printing the table to out.
func Run(ctx context.Context, out io.Writer, size Size, runs int, diag Diag) error {
	run := phases
	if len(diag.Phases) > 0 {
		run = nil
		for _, ph := range diag.Phases {
			if !slices.Contains(phases, ph) {
				return fmt.Errorf("unknown phase %q (phases: %s)", ph, strings.Join(phases, ", "))
			}
		}
		for _, ph := range phases {
			if slices.Contains(diag.Phases, ph) {
				run = append(run, ph)
			}
		}
		if slices.Contains(run, "LR") && !slices.Contains(run, "LB") || slices.Contains(run, "restore") && !slices.Contains(run, "backup") {
			return errors.New("LR needs LB and restore needs backup in the same run")
		}
	}
	rclone, err := ensureRclone()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bench-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	azDir := filepath.Join(dir, "azurite")
	if err := os.Mkdir(azDir, 0o700); err != nil {
		return err
	}
	az, err := azurite.Start(ctx, azurite.Options{Dir: azDir})
	if err != nil {
		return err
	}
	defer func() { az.Stop() }()
	var svc *azurite.Instance // the service tables' Azurite, unless shared
	if !size.SharedAzurite {
		svcDir := filepath.Join(dir, "azurite-service")
		if err := os.Mkdir(svcDir, 0o700); err != nil {
			return err
		}
		if svc, err = azurite.Start(ctx, azurite.Options{Dir: svcDir}); err != nil {
			return err
		}
		defer svc.Stop()
	}
	serviceConn := ""
	if svc != nil {
		serviceConn = svc.ConnectionString()
	}
	emu, err := kvemu.Start(kvemu.Options{})
	if err != nil {
		return err
	}
	defer emu.Close()
	settings, err := keyVault(emu, dir, az.ConnectionString())
	if err != nil {
		return err
	}
	if size.SpoolMB > 0 {
		settings["RESTORE_SPOOL_LIMIT_MB"] = strconv.Itoa(size.SpoolMB)
	}
	a, err := newApp(ctx, settings, serviceConn, false)
	if err != nil {
		return err
	}
	if _, err := a.BYOK.Configure(ctx, tenant, byok.Settings{KeyVaultName: "bench-kv", KeyName: "bench", TenantID: entraTenant}, ""); err != nil {
		return fmt.Errorf("enable BYOK: %w", err)
	}
	fileBytes, err := seedTenant(ctx, a.Assets, size)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	where := "an Azurite of their own"
	if svc == nil {
		where = "the data's Azurite"
	}
	fmt.Fprintf(out, "tenant: %d × %d MiB + %d × %d KiB files (%.1f MiB), %d records; chunk 8 MiB, parallelism 4; RESTORE_SPOOL_LIMIT_MB %s; service tables in %s\n",
		size.BigFiles, size.BigSize>>20, size.SmallFiles, size.SmallSize>>10, float64(fileBytes)/(1<<20), size.Records,
		cmp.Or(settings["RESTORE_SPOOL_LIMIT_MB"], "default"), where)

	self, err := os.Executable()
	if err != nil {
		return err
	}
	all := map[string][]measured{}
	for i := range runs {
		sp := spec{Settings: settings, Conn: az.ConnectionString(), ServiceConn: serviceConn, Tenant: tenant,
			IndexPath: filepath.Join(dir, fmt.Sprintf("lb-%d.json", i)), BlobPrefix: fmt.Sprintf("lb-%d/", i),
			Verbose: diag.Verbose, ProfileDir: diag.ProfileDir, Run: i + 1}
		for _, ph := range run {
			var m measured
			cpu0, svc0 := az.CPUTime(), svc.CPUTime()
			switch ph {
			case "B2":
				m, err = runRclone(ctx, rclone, dir, az, i)
			default:
				if ph == "LR" || ph == "restore" {
					sp.Target = fmt.Sprintf("%s-%s-%d", tenant, strings.ToLower(ph), i)
				}
				var r result
				r, m, err = runChild(ctx, self, dir, ph, sp)
				if r.BackupID != "" {
					sp.BackupID = r.BackupID
				}
			}
			if err != nil {
				return fmt.Errorf("run %d, %s: %w", i+1, ph, err)
			}
			m.azurite = az.CPUTime() - cpu0
			m.service = svc.CPUTime() - svc0
			fmt.Fprintf(out, "run %d %-8s %7.1f MiB/s  %6.2f s  peak RSS %6.1f MiB  Azurite CPU %5.1f s%s\n",
				i+1, ph, mibs(fileBytes, m.seconds), m.seconds, float64(m.rssKiB)/1024, m.azurite.Seconds(), serviceCPU(svc, m.service))
			all[ph] = append(all[ph], m)
			if size.Reclaim && !(i == runs-1 && ph == run[len(run)-1]) {
				if az, err = reclaim(ctx, az, ph); err != nil {
					return fmt.Errorf("run %d, freeing %s's blobs: %w", i+1, ph, err)
				}
			}
		}
	}
	printTable(out, all, fileBytes)
	return nil
}

func mibs(n int64, s float64) float64 { return float64(n) / (1 << 20) / s }

// printTable prints min/median/max MiB/s and peak RSS per phase and the
// ratios of the medians.
func printTable(out io.Writer, all map[string][]measured, fileBytes int64) {
	speed := func(ph string) []float64 {
		var v []float64
		for _, m := range all[ph] {
			v = append(v, mibs(fileBytes, m.seconds))
		}
		slices.Sort(v)
		return v
	}
	med := func(v []float64) float64 { return v[len(v)/2] }
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "phase\tMiB/s min\tmedian\tmax\tpeak RSS MiB (max)\t")
	for _, ph := range phases {
		v := speed(ph)
		if len(v) == 0 {
			continue
		}
		var rss int64
		for _, m := range all[ph] {
			rss = max(rss, m.rssKiB)
		}
		fmt.Fprintf(w, "%s\t%.1f\t%.1f\t%.1f\t%.1f\t\n", ph, v[0], med(v), v[len(v)-1], float64(rss)/1024)
	}
	w.Flush()
	ratio := func(a, b string) (float64, float64, float64) {
		var r []float64
		for i := range all[a] {
			r = append(r, all[b][i].seconds/all[a][i].seconds)
		}
		slices.Sort(r)
		return r[0], med(r), r[len(r)-1]
	}
	fmt.Fprintln(out, "ratio (per run; min/median/max):")
	for _, p := range [][2]string{{"backup", "LB"}, {"backup", "B2"}, {"restore", "LR"}} {
		if len(all[p[0]]) == 0 || len(all[p[1]]) == 0 {
			continue
		}
		lo, m, hi := ratio(p[0], p[1])
		fmt.Fprintf(out, "  %s/%s\t%.2f / %.2f / %.2f\n", p[0], p[1], lo, m, hi)
	}
}

// runChild runs phase in a child process of this executable and returns
// its result and its own peak RSS.
func runChild(ctx context.Context, self, dir, phase string, sp spec) (result, measured, error) {
	path := filepath.Join(dir, "spec.json")
	b, err := json.Marshal(sp)
	if err != nil {
		return result{}, measured{}, err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return result{}, measured{}, err
	}
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), childEnv+"="+phase, childSpec+"="+path)
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return result{}, measured{}, err
	}
	var r result
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		return result{}, measured{}, fmt.Errorf("child's answer: %w", err)
	}
	return r, measured{seconds: r.Seconds, rssKiB: maxRSS(cmd.ProcessState)}, nil
}

// maxRSS is the child's ru_maxrss (KiB on Linux): its own peak, not ours.
func maxRSS(ps *os.ProcessState) int64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss
	}
	return 0
}

// ensureRclone finds rclone, installing Debian's when missing.
func ensureRclone() (string, error) {
	if p, err := exec.LookPath("rclone"); err == nil {
		return p, nil
	}
	fmt.Fprintln(os.Stderr, "bench: rclone missing, installing it: apt-get install -y rclone")
	var err error
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "rclone"}} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err = cmd.Run(); err != nil {
			break
		}
	}
	if err != nil {
		return "", fmt.Errorf("rclone is needed for phase B2 and could not be installed (%w); install it: apt-get install -y rclone", err)
	}
	return exec.LookPath("rclone")
}

// runRclone copies the tenant's files through a crypt remote into Azurite.
func runRclone(ctx context.Context, path, dir string, az *azurite.Instance, run int) (measured, error) {
	obscured, err := exec.CommandContext(ctx, path, "obscure", "bench-password").Output()
	if err != nil {
		return measured{}, fmt.Errorf("rclone obscure: %w", err)
	}
	cmd := exec.CommandContext(ctx, path, "copy", "az:assets/"+tenant, fmt.Sprintf("secret:run-%d", run), "--transfers", strconv.Itoa(par))
	cmd.Env = append(os.Environ(),
		"RCLONE_CONFIG="+filepath.Join(dir, "rclone.conf"),
		"RCLONE_CONFIG_AZ_TYPE=azureblob",
		"RCLONE_CONFIG_AZ_ACCOUNT="+azurite.AccountName,
		"RCLONE_CONFIG_AZ_KEY="+azurite.AccountKey,
		"RCLONE_CONFIG_AZ_USE_EMULATOR=true",
		"RCLONE_CONFIG_AZ_ENDPOINT="+az.BlobURL(),
		"RCLONE_CONFIG_SECRET_TYPE=crypt",
		"RCLONE_CONFIG_SECRET_REMOTE=az:rclone-crypt",
		"RCLONE_CONFIG_SECRET_PASSWORD="+strings.TrimSpace(string(obscured)),
	)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		return measured{}, fmt.Errorf("rclone copy: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return measured{seconds: took.Seconds(), rssKiB: maxRSS(cmd.ProcessState)}, nil
}

// keyVault makes the vault, the customer key (tagged for the tenant) and
// the platform key, and returns the handler's settings for this stack.
func keyVault(emu *kvemu.Emulator, dir, conn string) (map[string]string, error) {
	steps := []func() error{
		func() error { return emu.CreateVault("bench-kv", entraTenant, kvemu.AccessPolicy) },
		func() error {
			return emu.Grant("bench-kv", kvemu.CustomerToken(appID, entraTenant), "get", "wrapKey", "unwrapKey")
		},
		func() error { return emu.Grant("bench-kv", kvemu.PlatformToken, "get", "wrapKey", "unwrapKey") },
		func() error { _, err := emu.CreateKey("bench-kv", "bench", "RSA", 2048, nil); return err },
		func() error { _, err := emu.CreateKey("bench-kv", "platform", "RSA", 2048, nil); return err },
		func() error {
			return emu.SetTags("bench-kv", "bench", "", map[string]string{keywrap.DefaultOwnershipTag: tenant})
		},
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return nil, err
		}
	}
	ca := filepath.Join(dir, "kv-ca.pem")
	if err := emu.WriteCA(ca); err != nil {
		return nil, err
	}
	// The app as the handler builds it; its HTTP edge is not used, so the
	// token settings only have to be valid.
	return map[string]string{
		"FUNCTIONS_CUSTOMHANDLER_PORT": "7072",
		"AzureWebJobsStorage":          conn,
		"PLATFORM_KEY_ID":              emu.VaultURL("bench-kv") + "keys/platform",
		"PLATFORM_CREDENTIAL":          config.CredEmulator,
		"BYOK_APP_CLIENT_ID":           appID,
		"BYOK_CREDENTIAL":              config.CredEmulator,
		"KEYVAULT_URL_TEMPLATE":        emu.URLTemplate(),
		"KEYVAULT_CA_FILE":             ca,
		"AUTH_ISSUER":                  "http://127.0.0.1/",
		"AUTH_AUDIENCE":                "api://bench",
		"AUTH_JWKS_URL":                "http://127.0.0.1/jwks.json",
		"BACKUP_CHUNK_SIZE":            strconv.Itoa(chunkSize),
		"BACKUP_PARALLELISM":           strconv.Itoa(par),
	}, nil
}

// newApp builds the app as the handler does, with its service tables in
// serviceConn's Azurite when that is set.
func newApp(ctx context.Context, settings map[string]string, serviceConn string, verbose bool) (*app.App, error) {
	cfg, err := config.Load(func(k string) string { return settings[k] })
	if err != nil {
		return nil, err
	}
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	deps := app.Deps{Logger: log}
	if serviceConn != "" {
		if deps.ServiceTables, err = aztables.NewServiceClientFromConnectionString(serviceConn, nil); err != nil {
			return nil, err
		}
	}
	a, err := app.New(ctx, cfg, deps)
	if err != nil {
		return nil, err
	}
	return a, a.Assets.Ensure(ctx)
}

// seedTenant writes the records (seed.Tenant) and the files of exactly the
// sizes asked, 4 at a time, and returns the file bytes.
func seedTenant(ctx context.Context, s assets.Store, size Size) (int64, error) {
	if _, err := seed.Tenant(ctx, s, tenant, seed.Options{Records: size.Records, Seed: 1}); err != nil {
		return 0, err
	}
	type file struct {
		path string
		size int64
	}
	var files []file
	for i := range size.BigFiles {
		files = append(files, file{fmt.Sprintf("big/file-%02d.bin", i), size.BigSize})
	}
	for i := range size.SmallFiles {
		files = append(files, file{fmt.Sprintf("small/%02d/file-%05d.bin", i%16, i), size.SmallSize})
	}
	var total int64
	var mu sync.Mutex
	var errs []error
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i, f := range files {
		total += f.size
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			err := s.PutFile(ctx, tenant, assets.File{Path: f.path, Size: f.size, ContentType: "application/octet-stream"},
				io.LimitReader(newPRNG(uint64(i)+1), f.size))
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return total, errors.Join(errs...)
}

// prng is an incompressible byte stream (xorshift64*), cheap enough that
// seeding a GiB is bounded by Azurite, not the generator.
type prng struct{ s uint64 }

func newPRNG(seed uint64) *prng { return &prng{s: seed*0x9E3779B97F4A7C15 | 1} }

func (p *prng) Read(b []byte) (int, error) {
	for i := 0; i < len(b); i += 8 {
		p.s ^= p.s >> 12
		p.s ^= p.s << 25
		p.s ^= p.s >> 27
		v := p.s * 2685821657736338717
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return len(b), nil
}

// reclaim deletes what phase ph filled (LB's blobs and LR's target after
// LR, the restore's target after the restore, rclone's output after B2)
// and restarts Azurite on the same data folder and ports, so its start-up
// sweep frees their space.
func reclaim(ctx context.Context, az *azurite.Instance, ph string) (*azurite.Instance, error) {
	var containers, tables []string
	// Only whole containers and tables: Azurite deletes blobs one by one
	// at a few dozen a second once it holds tens of thousands (the 20,000
	// files of LR's 10 GiB target took over 15 minutes).
	switch ph {
	case "LR":
		containers, tables = []string{scratch, lrContainer}, []string{lrTable}
	case "restore":
		containers, tables = []string{restoreContainer}, []string{restoreTable}
	case "B2":
		containers = []string{"rclone-crypt"}
	default:
		return az, nil
	}
	bs, err := azblob.NewClientFromConnectionString(az.ConnectionString(), nil)
	if err != nil {
		return az, err
	}
	for _, name := range containers {
		c := bs.ServiceClient().NewContainerClient(name)
		if _, err := c.Delete(ctx, nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerNotFound) {
			return az, err
		}
	}
	ts, err := aztables.NewServiceClientFromConnectionString(az.ConnectionString(), nil)
	if err != nil {
		return az, err
	}
	for _, name := range tables {
		if _, err := ts.DeleteTable(ctx, name, nil); err != nil && !azerr.HasTableCode(err, aztables.TableNotFound, aztables.ResourceNotFound) {
			// Azurite answers ResourceNotFound; the service TableNotFound.
			return az, err
		}
	}
	opts := azurite.Options{Dir: az.Dir, BlobPort: az.BlobPort, QueuePort: az.QueuePort, TablePort: az.TablePort}
	az.Stop()
	return azurite.Start(ctx, opts)
}
