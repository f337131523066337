package pack

import (
	"archive/zip"
	"context"
	"debug/elf"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/twinit/byok-backup/internal/devstack/runner/approot"
)

// fakeBuild stands in for go build: the layout, not the compiler, is under test.
func fakeBuild(_ context.Context, out string) error {
	return os.WriteFile(out, []byte("#!/bin/sh\necho handler\n"), 0o600)
}

func TestPackFixtureLayoutIsWhatTheHostDiscovers(t *testing.T) {
	out := t.TempDir()
	// A stale function folder from an earlier run must not survive.
	if err := os.MkdirAll(filepath.Join(out, "app", "Gone"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "app", "Gone", "function.json"), []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Pack(context.Background(), Options{Src: "testdata/src", Out: out, Build: fakeBuild})
	if err != nil {
		t.Fatal(err)
	}
	app, err := approot.Load(res.AppDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range app.Functions {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, ","); got != "Hello,Tick,Work" {
		t.Fatalf("discovered %s, want Hello,Tick,Work", got)
	}
	if err := app.CheckExecutable(); err != nil {
		t.Fatal(err)
	}
	// The app root holds exactly host.json, the handler and the function folders.
	wantFiles := map[string]fs.FileMode{
		"Hello/": fs.ModeDir | 0o755, "Hello/function.json": 0o644,
		"Tick/": fs.ModeDir | 0o755, "Tick/function.json": 0o644,
		"Work/": fs.ModeDir | 0o755, "Work/function.json": 0o644,
		"handler": 0o755, "host.json": 0o644,
	}
	gotFiles := map[string]fs.FileMode{}
	err = filepath.WalkDir(res.AppDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == res.AppDir {
			return err
		}
		rel, _ := filepath.Rel(res.AppDir, p)
		info, _ := d.Info()
		if d.IsDir() {
			rel += "/"
		}
		gotFiles[filepath.ToSlash(rel)] = info.Mode()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	assertModes(t, "app dir", gotFiles, wantFiles)

	// The zip has the same entries with the same modes.
	zr, err := zip.OpenReader(res.Zip)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	zipFiles := map[string]fs.FileMode{}
	for _, f := range zr.File {
		if strings.Contains(f.Name, `\`) || strings.HasPrefix(f.Name, "/") {
			t.Errorf("zip entry %q is not a relative forward-slash path", f.Name)
		}
		zipFiles[f.Name] = f.Mode()
	}
	assertModes(t, "zip", zipFiles, wantFiles)

	// Function definitions are copied byte for byte.
	src, _ := os.ReadFile("testdata/src/functions/Hello/function.json")
	dst, _ := os.ReadFile(filepath.Join(res.AppDir, "Hello", "function.json"))
	if string(src) != string(dst) {
		t.Errorf("Hello/function.json changed in packaging")
	}
}

func assertModes(t *testing.T, what string, got, want map[string]fs.FileMode) {
	t.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		g, gok := got[k]
		w, wok := want[k]
		switch {
		case !gok:
			t.Errorf("%s: missing %s", what, k)
		case !wok:
			t.Errorf("%s: unexpected %s", what, k)
		case g != w:
			t.Errorf("%s: %s has mode %v, want %v", what, k, g, w)
		}
	}
}

func TestPackRefusesInvalidSources(t *testing.T) {
	cases := map[string]func(t *testing.T, src string){
		"function name the host rejects": func(t *testing.T, src string) {
			mustWrite(t, filepath.Join(src, "functions", "1bad", "function.json"), `{"bindings":[{"name":"t","type":"timerTrigger","direction":"in"}]}`)
		},
		"no functions folder": func(t *testing.T, src string) {
			if err := os.RemoveAll(filepath.Join(src, "functions")); err != nil {
				t.Fatal(err)
			}
		},
		"executable in a sub-folder": func(t *testing.T, src string) {
			mustWrite(t, filepath.Join(src, "host.json"), `{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"bin/handler"}}}`)
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			src := t.TempDir()
			if err := os.CopyFS(src, os.DirFS("testdata/src")); err != nil {
				t.Fatal(err)
			}
			mutate(t, src)
			_, err := Pack(context.Background(), Options{Src: src, Out: t.TempDir(), Build: fakeBuild})
			if err == nil {
				t.Fatal("Pack succeeded")
			}
			if name != "no functions folder" && !errors.Is(err, approot.ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestPackFailsWhenBuildFails(t *testing.T) {
	boom := errors.New("compiler exploded")
	_, err := Pack(context.Background(), Options{Src: "testdata/src", Out: t.TempDir(),
		Build: func(context.Context, string) error { return boom }})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the build error", err)
	}
}

func mustWrite(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// contractFunctions are the functions of API.md §1 the repository has so far.
var contractFunctions = []string{"BackupRetention", "BackupScheduler", "BackupUndelete", "BackupWorker", "Backups", "ByokMonitor",
	"ByokSettings", "ByokValidate", "Health", "RestoreWorker", "Restores", "Retention", "RewrapWorker", "Rewraps", "SettingsPage"}

// TestPackRepositoryTree packages the real source tree with the real Linux
// build. It fails while functions/, host.json or handler/ are missing.
func TestPackRepositoryTree(t *testing.T) {
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Pack(context.Background(), Options{Src: root, Out: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range res.App.Functions {
		names = append(names, f.Name)
	}
	if got, want := strings.Join(names, ","), strings.Join(contractFunctions, ","); got != want {
		t.Errorf("packaged functions %s, want %s", got, want)
	}
	if exe := res.App.Host.CustomHandler.Description.DefaultExecutablePath; exe != "handler" {
		t.Errorf("defaultExecutablePath = %q, want handler", exe)
	}
	if !res.App.Host.CustomHandler.EnableForwardingHTTPRequest {
		t.Error("host.json must enable enableForwardingHttpRequest")
	}
	f, err := elf.Open(filepath.Join(res.AppDir, "handler"))
	if err != nil {
		t.Fatalf("handler is not an ELF binary: %v", err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 || f.OSABI != elf.ELFOSABI_NONE && f.OSABI != elf.ELFOSABI_LINUX {
		t.Errorf("handler is %v/%v, want linux amd64", f.Machine, f.OSABI)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("handler is dynamically linked; build with CGO_ENABLED=0")
		}
	}
}
