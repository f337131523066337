// Command soak is the kill -9 soak (docs/SOAK.md): it runs the real
// handler behind the local runner on a private Azurite, Key Vault emulator
// and token issuer, keeps backups (POST …/backups and scheduler runs) and
// restores (replace into sandbox tenants, and dry runs) of several tenants
// in flight, and sends SIGKILL to the handler process at random moments.
// The runner restarts the handler each time, as the Functions host does.
// After the last kill it lets every job finish, then checks the outcome:
//
//	go run ./cmd/soak -tenants 4 -kills 25 -seed 1
//
// It prints a table of figures and exits 1 when an invariant is broken:
// a completed backup that fails verification, a backup or restore that
// completed twice, or a succeeded restore whose target differs from the
// backup's content.
//
// With -instances N it runs the many-instances check instead (docs/SOAK.md
// "Many instances"): one scheduler slot's backups and a set of restores on
// one runner, then on N runners sharing one Azurite:
//
//	go run ./cmd/soak -instances 3 -tenants 300 -restores 50
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	var o Options
	flag.IntVar(&o.Tenants, "tenants", 4, "source tenants backed up and restored")
	flag.IntVar(&o.Kills, "kills", 25, "SIGKILLs sent to the handler process")
	flag.Uint64Var(&o.Seed, "seed", 1, "seed of the kill times, the workload's choices and the assets")
	flag.IntVar(&o.Records, "records", 200, "records per source tenant")
	flag.IntVar(&o.Files, "files", 8, "files per source tenant")
	flag.Int64Var(&o.FileSize, "file-size", 2<<20, "largest file in bytes")
	flag.DurationVar(&o.MinGap, "min-gap", 2*time.Second, "shortest time between the handler answering again and the next kill")
	flag.DurationVar(&o.MaxGap, "max-gap", 8*time.Second, "longest time between the handler answering again and the next kill")
	flag.DurationVar(&o.Drain, "drain", 5*time.Minute, "how long jobs may take to finish after the last kill")
	flag.DurationVar(&o.SweepGrace, "sweep-grace", time.Minute, "JOB_SWEEP_GRACE of the handler: when the sweeps fail a running job nothing took over")
	flag.StringVar(&o.HandlerLog, "handler-log", "", "file for the handler's log lines (default: discarded)")
	verbose := flag.Bool("v", false, "log the soak's and the runner's steps to stderr")
	nInstances := flag.Int("instances", 0, "instead of the kill soak, the many-instances run (docs/SOAK.md): this many runners against one (-tenants defaults to 300)")
	restores := flag.Int("restores", 50, "with -instances: restores per phase")
	phase := flag.Duration("phase", 20*time.Minute, "with -instances: bound on one phase")
	flag.Parse()

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	o.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *nInstances > 0 {
		os.Exit(runInstances(ctx, *nInstances, *restores, *phase, o))
	}
	f, err := Run(ctx, o)
	if f != nil {
		f.Print(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	if bad := f.Violations(); len(bad) > 0 {
		fmt.Fprintln(os.Stderr, "soak: invariants broken:", bad)
		os.Exit(1)
	}
}

// runInstances is the -instances mode; it returns the exit code. Sizes the
// kill soak defaults to (-tenants, -records, -files, -file-size) are
// smaller here unless given: many small tenants.
func runInstances(ctx context.Context, n, restores int, phase time.Duration, o Options) int {
	opts := InstancesOptions{Tenants: 300, Restores: restores, Instances: n, Records: 20, Files: 2, FileSize: 16 << 10,
		Phase: phase, HandlerLog: o.HandlerLog, Log: o.Log}
	flag.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "tenants":
			opts.Tenants = o.Tenants
		case "records":
			opts.Records = o.Records
		case "files":
			opts.Files = o.Files
		case "file-size":
			opts.FileSize = o.FileSize
		}
	})
	f, err := RunInstances(ctx, opts)
	if f != nil {
		f.Print(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		return 2
	}
	if bad := f.Violations(); len(bad) > 0 {
		fmt.Fprintln(os.Stderr, "soak: invariants broken:", bad)
		return 1
	}
	return 0
}
