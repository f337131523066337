// Package pack lays out a deployable Azure Functions app root from the source
// tree (host.json, the Linux handler binary, one folder per function copied
// from functions/<Name>/function.json) and zips it for zip deploy.
//
// The host only discovers function folders that sit beside host.json
// (docs/research/functions-custom-handler.md §2.1), which is why the source tree's
// functions/ folder can't be deployed as is.
package pack

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/twinit/byok-backup/internal/devstack/runner/approot"
)

// BuildFunc writes the handler executable to out.
type BuildFunc func(ctx context.Context, out string) error

// Options configure [Pack].
type Options struct {
	// Src is the source tree holding host.json and functions/.
	Src string
	// Out is the output folder; Pack writes Out/app/ and Out/app.zip.
	Out string
	// Build writes the handler binary; nil means [GoBuild]("./handler") run in Src.
	Build BuildFunc
}

// Result says where Pack put things and what the host will discover there.
type Result struct {
	AppDir string
	Zip    string
	App    *approot.App
}

// Pack lays out Out/app from Src, builds the handler into it, checks that
// the layout is what the host discovers, and writes Out/app.zip. Out/app is
// replaced, so files from an earlier run (a removed function) can't linger.
func Pack(ctx context.Context, opts Options) (*Result, error) {
	host, err := approot.ReadHost(filepath.Join(opts.Src, approot.HostJSON))
	if err != nil {
		return nil, err
	}
	srcFuncs := filepath.Join(opts.Src, "functions")
	entries, err := os.ReadDir(srcFuncs)
	if err != nil {
		return nil, fmt.Errorf("failed to list %s (function definitions live in functions/<Name>/function.json): %w", srcFuncs, err)
	}
	appDir := filepath.Join(opts.Out, "app")
	if err := os.RemoveAll(appDir); err != nil {
		return nil, fmt.Errorf("failed to clear %s: %w", appDir, err)
	}
	if err := os.MkdirAll(appDir, 0o755); err != nil {
		return nil, fmt.Errorf("failed to create %s: %w", appDir, err)
	}
	if err := copyFile(filepath.Join(opts.Src, approot.HostJSON), filepath.Join(appDir, approot.HostJSON), 0o644); err != nil {
		return nil, err
	}
	var want []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		src := filepath.Join(srcFuncs, e.Name(), approot.FunctionJSON)
		if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		// Check before copying so a bad definition names its source file.
		if _, err := approot.ReadFunction(e.Name(), src); err != nil {
			return nil, err
		}
		if err := os.Mkdir(filepath.Join(appDir, e.Name()), 0o755); err != nil {
			return nil, fmt.Errorf("failed to create function folder: %w", err)
		}
		if err := copyFile(src, filepath.Join(appDir, e.Name(), approot.FunctionJSON), 0o644); err != nil {
			return nil, err
		}
		want = append(want, e.Name())
	}
	if len(want) == 0 {
		return nil, fmt.Errorf("%w: no functions/<Name>/function.json under %s", approot.ErrInvalid, opts.Src)
	}
	exe := host.CustomHandler.Description.DefaultExecutablePath
	if filepath.IsAbs(exe) || strings.Contains(filepath.ToSlash(exe), "/") {
		return nil, fmt.Errorf("%w: defaultExecutablePath %q must be a file name at the app root", approot.ErrInvalid, exe)
	}
	build := opts.Build
	if build == nil {
		build = GoBuild(opts.Src, "./handler")
	}
	if err := build(ctx, filepath.Join(appDir, exe)); err != nil {
		return nil, fmt.Errorf("failed to build the handler: %w", err)
	}
	if err := os.Chmod(filepath.Join(appDir, exe), 0o755); err != nil {
		return nil, fmt.Errorf("failed to mark the handler executable: %w", err)
	}
	app, err := Verify(appDir, want)
	if err != nil {
		return nil, err
	}
	zipPath := filepath.Join(opts.Out, "app.zip")
	if err := Zip(appDir, zipPath); err != nil {
		return nil, err
	}
	return &Result{AppDir: appDir, Zip: zipPath, App: app}, nil
}

// Verify loads appDir as the host would and checks that it discovers exactly
// the functions named in want and that the handler is an executable file.
func Verify(appDir string, want []string) (*approot.App, error) {
	app, err := approot.Load(appDir)
	if err != nil {
		return nil, err
	}
	if err := app.CheckExecutable(); err != nil {
		return nil, err
	}
	var got []string
	for _, f := range app.Functions {
		got = append(got, f.Name)
	}
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		return nil, fmt.Errorf("%w: the host would discover %v, the source defines %v", approot.ErrInvalid, got, want)
	}
	return app, nil
}

// GoBuild returns a [BuildFunc] that cross-compiles pkg (run in dir) into a
// static Linux amd64 binary, the target of Linux Function apps.
func GoBuild(dir, pkg string) BuildFunc {
	return func(ctx context.Context, out string) error {
		abs, err := filepath.Abs(out)
		if err != nil {
			return err
		}
		// No -trimpath: it would change every package's build ID and defeat
		// the cache shared with `CGO_ENABLED=0 go test` (scripts/test.sh).
		cmd := exec.CommandContext(ctx, "go", "build", "-o", abs, pkg)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
		}
		return nil
	}
}

// zipTime is the fixed modification time of every entry, so the same
// layout always yields the same zip.
var zipTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// Zip writes every file and folder under appDir to zipPath with forward
// slashes and the files' modes (the handler keeps 0755, which a zip built on
// Windows would lose: core-tools issue #2510).
func Zip(appDir, zipPath string) (err error) {
	f, err := os.Create(zipPath)
	if err != nil {
		return fmt.Errorf("failed to create %s: %w", zipPath, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("failed to write %s: %w", zipPath, cerr)
		}
	}()
	zw := zip.NewWriter(f)
	err = filepath.WalkDir(appDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == appDir {
			return err
		}
		rel, err := filepath.Rel(appDir, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := zip.FileInfoHeader(info)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		hdr.Modified = zipTime
		if d.IsDir() {
			hdr.Name += "/"
			hdr.Method = zip.Store
			_, err = zw.CreateHeader(hdr)
			return err
		}
		if !info.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", p)
		}
		hdr.Method = zip.Deflate
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			return err
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(w, src)
		return err
	})
	if err != nil {
		return fmt.Errorf("failed to zip %s: %w", appDir, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("failed to finish %s: %w", zipPath, err)
	}
	return nil
}

func copyFile(src, dst string, mode fs.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("failed to read %s: %w", src, err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		return fmt.Errorf("failed to write %s: %w", dst, err)
	}
	return nil
}
