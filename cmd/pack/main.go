// Command pack lays out the deployable app root dist/app (host.json, the
// Linux handler binary, one folder per function) and zips it to dist/app.zip.
//
//	go run ./cmd/pack -out dist
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/twinit/byok-backup/internal/devstack/pack"
)

func main() {
	src := flag.String("src", ".", "source tree holding host.json, functions/ and handler/")
	out := flag.String("out", "dist", "output folder: writes <out>/app and <out>/app.zip")
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := pack.Pack(ctx, pack.Options{Src: *src, Out: *out})
	if err != nil {
		log.Error("package step failed", "err", err)
		os.Exit(1)
	}
	names := make([]string, 0, len(res.App.Functions))
	for _, f := range res.App.Functions {
		names = append(names, f.Name)
	}
	log.Info("packaged app", "appDir", res.AppDir, "zip", res.Zip, "functions", names)
	fmt.Println(res.Zip)
}
