package main

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/twinit/byok-backup/internal/config"
	"github.com/twinit/byok-backup/internal/devstack/kvemu"
)

// documentedSettings are the setting names in README's settings table
// (the first column's backticked names).
func documentedSettings(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	check(t, err)
	_, rest, ok := strings.Cut(string(b), "\n## Settings\n")
	if !ok {
		t.Fatal("README has no ## Settings section")
	}
	section, _, _ := strings.Cut(rest, "\n## ")
	nameRE := regexp.MustCompile("`([A-Za-z_][A-Za-z0-9_]*)`")
	var names []string
	for line := range strings.SplitSeq(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 || !strings.HasPrefix(line, "| `") {
			continue
		}
		for _, m := range nameRE.FindAllStringSubmatch(cells[1], -1) {
			names = append(names, m[1])
		}
	}
	if len(names) < 30 {
		t.Fatalf("found %d settings in README's table: %v", len(names), names)
	}
	return names
}

// changedFields are the paths ("Names.QueueBackupJobs") of the fields that
// differ between a and b. Names and Auth are plain records and compared
// field by field; every other field counts as one value (Storage is used
// whole, through its methods).
func changedFields(a, b config.Config) []string {
	var out []string
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := range va.NumField() {
		f := va.Type().Field(i)
		if f.Name == "Names" || f.Name == "Auth" {
			for j := range f.Type.NumField() {
				if !reflect.DeepEqual(va.Field(i).Field(j).Interface(), vb.Field(i).Field(j).Interface()) {
					out = append(out, f.Name+"."+f.Type.Field(j).Name)
				}
			}
			continue
		}
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			out = append(out, f.Name)
		}
	}
	return out
}

// wiringReads are the Config field paths the wiring (the non-test files
// of the handler and of internal/app) reads: selector chains rooted at the
// config variable (cfg) or at its Names (n).
func wiringReads(t *testing.T) []string {
	t.Helper()
	roots := map[string]string{"cfg": "", "n": "Names."}
	files, err := filepath.Glob("*.go")
	check(t, err)
	more, err := filepath.Glob("../internal/app/*.go")
	check(t, err)
	files = append(files, more...)
	var reads []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(token.NewFileSet(), f, nil, 0)
		check(t, err)
		ast.Inspect(file, func(node ast.Node) bool {
			sel, ok := node.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			var chain []string
			var x ast.Expr = sel
			for {
				s, ok := x.(*ast.SelectorExpr)
				if !ok {
					break
				}
				chain = append([]string{s.Sel.Name}, chain...)
				x = s.X
			}
			if id, ok := x.(*ast.Ident); ok {
				if prefix, ok := roots[id.Name]; ok {
					reads = append(reads, prefix+strings.Join(chain, "."))
				}
			}
			return false // the whole chain is recorded once
		})
	}
	return reads
}

// hostReads reports whether functions/*/function.json or host.json refer
// to the setting (%NAME%): the Functions host (and the local runner) then
// reads it.
func hostReads(t *testing.T, name string) bool {
	t.Helper()
	files, err := filepath.Glob("../functions/*/function.json")
	check(t, err)
	for _, f := range append(files, "../host.json") {
		b, err := os.ReadFile(f)
		check(t, err)
		if strings.Contains(string(b), "%"+name+"%") {
			return true
		}
	}
	return false
}

// Every setting README documents changes behaviour: set to a valid
// non-default value, it changes the Config that config.Load returns, and
// a changed field is read by the wiring or the setting is read by the
// Functions host through a trigger (%NAME%). A setting that is loaded and
// validated but used by nothing (as QUEUE_BACKUP_JOBS and
// QUEUE_RESTORE_JOBS were) fails here. Settings whose effect needs a
// running app have their own tests (TestQueueSettingsNameTheJobQueues,
// TestNoTimerDeletesBackupsWithoutRows for TABLE_BACKUPS, config's tests
// for the parsed values).
func TestEveryDocumentedSettingChangesBehaviour(t *testing.T) {
	kv := kvemu.TestStart(t)
	dir := t.TempDir()
	ca, cert := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.pem")
	check(t, kv.WriteCA(ca))
	// Another emulator, another CA: the two files differ in content.
	check(t, kvemu.TestStart(t).WriteCA(cert))
	const guid = "11111111-2222-3333-4444-555555555555"
	// with: settings applied to both sides, for a setting that only
	// matters alongside another.
	cases := map[string]struct {
		value string
		with  map[string]string
	}{
		"AzureWebJobsStorage":               {value: "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5"},
		"BACKUP_SCHEDULE":                   {value: "0 30 3 * * *"},
		"BYOK_MONITOR_SCHEDULE":             {value: "0 */5 * * * *"},
		"PLATFORM_KEY_ID":                   {value: "https://other-kv.vault.azure.net/keys/k/0123456789abcdef0123456789abcdef"},
		"PLATFORM_CREDENTIAL":               {value: config.CredManagedIdentity},
		"PLATFORM_IDENTITY_CLIENT_ID":       {value: guid},
		"BYOK_APP_CLIENT_ID":                {value: guid},
		"BYOK_CREDENTIAL":                   {value: config.CredSecret, with: map[string]string{"BYOK_CLIENT_SECRET": "a-secret"}},
		"BYOK_FEDERATED_IDENTITY_CLIENT_ID": {value: guid},
		"BYOK_CLIENT_SECRET":                {value: "a-secret", with: map[string]string{"BYOK_CREDENTIAL": config.CredSecret, "BYOK_CLIENT_SECRET": "an-older-secret"}},
		"BYOK_CLIENT_CERTIFICATE_PATH":      {value: cert, with: map[string]string{"BYOK_CREDENTIAL": config.CredCertificate, "BYOK_CLIENT_CERTIFICATE_PATH": ca}},
		"BYOK_CLIENT_CERTIFICATE_PASSWORD":  {value: "pfx-pass", with: map[string]string{"BYOK_CREDENTIAL": config.CredCertificate, "BYOK_CLIENT_CERTIFICATE_PATH": cert}},
		"BYOK_OWNERSHIP_TAG":                {value: "other-tag"},
		"KEYVAULT_URL_TEMPLATE":             {value: "https://{vault}.vault.azure.cn/"},
		"KEYVAULT_CA_FILE":                  {value: cert},
		"AUTH_ISSUER":                       {value: "https://login.example/"},
		"AUTH_AUDIENCE":                     {value: "api://other"},
		"AUTH_JWKS_URL":                     {value: "https://login.example/keys"},
		"AUTH_TENANT_CLAIM":                 {value: "tid"},
		"AUTH_ROLES_CLAIM":                  {value: "groups"},
		"BACKUP_CHUNK_SIZE":                 {value: "2MiB"},
		"BACKUP_PARALLELISM":                {value: "7"},
		"BYOK_MONITOR_CONCURRENCY":          {value: "3"},
		"BYOK_TRANSIENT_GRACE":              {value: "2h"},
		"RETENTION_MAX_DELETE_FRACTION":     {value: "0.25"},
		"RETENTION_SCHEDULE":                {value: "0 0 5 * * *"},
		"RETENTION_DEFAULT":                 {value: "keepLast=3"},
		"BACKUP_SOFT_DELETE_DAYS":           {value: "2"},
		"DEV_SOFT_DELETE_WINDOW":            {value: "10s"},
		"TABLE_RETENTION_POLICIES":          {value: "OtherPolicies"},
		"RESTORE_SPOOL_LIMIT_MB":            {value: "64"},
		"JOB_STALE_AFTER":                   {value: "30s"},
		"JOB_SWEEP_GRACE":                   {value: "2h"},
		"FUNCTION_TIMEOUT":                  {value: "10m"},
		"LOG_LEVEL":                         {value: "debug"},
		"LOG_FORMAT":                        {value: "text"},
		"TABLE_TENANTS":                     {value: "OtherTenants"},
		"TABLE_ASSETS":                      {value: "OtherAssets"},
		"TABLE_BYOK_SETTINGS":               {value: "OtherByok"},
		"TABLE_BACKUPS":                     {value: "OtherBackups"},
		"TABLE_RESTORES":                    {value: "OtherRestores"},
		"TABLE_KEY_AUDIT":                   {value: "OtherAudit"},
		"TABLE_LEASES":                      {value: "OtherLeases"},
		"CONTAINER_ASSETS":                  {value: "other-assets"},
		"CONTAINER_BACKUPS":                 {value: "other-backups"},
		"QUEUE_BACKUP_JOBS":                 {value: "other-backup-jobs"},
		"QUEUE_RESTORE_JOBS":                {value: "other-restore-jobs"},
		"QUEUE_REWRAP_JOBS":                 {value: "other-rewrap-jobs"},
		"TABLE_REWRAPS":                     {value: "OtherRewraps"},
	}
	// The host's own setting: it picks the custom handler worker.
	hostOnly := map[string]bool{"FUNCTIONS_WORKER_RUNTIME": true}
	// The base is the documented local sample, with a CA file that exists
	// and the port the host would set.
	b, err := os.ReadFile("../local.settings.json.example")
	check(t, err)
	var sample struct{ Values map[string]string }
	check(t, json.Unmarshal(b, &sample))
	base := sample.Values
	base["FUNCTIONS_CUSTOMHANDLER_PORT"] = "7072"
	base["KEYVAULT_CA_FILE"] = ca
	load := func(t *testing.T, sets ...map[string]string) config.Config {
		t.Helper()
		env := map[string]string{}
		for _, m := range append([]map[string]string{base}, sets...) {
			for k, v := range m {
				env[k] = v
			}
		}
		cfg, err := config.Load(func(k string) string { return env[k] })
		check(t, err)
		return cfg
	}
	reads := wiringReads(t)
	read := func(field string) bool {
		return slices.ContainsFunc(reads, func(r string) bool { return r == field || strings.HasPrefix(r, field+".") })
	}

	for _, name := range documentedSettings(t) {
		if hostOnly[name] {
			continue
		}
		tc, ok := cases[name]
		if !ok {
			t.Errorf("%s is documented but has no case here: add one showing what it changes", name)
			continue
		}
		delete(cases, name)
		t.Run(name, func(t *testing.T) {
			changed := changedFields(load(t, tc.with), load(t, tc.with, map[string]string{name: tc.value}))
			if len(changed) == 0 {
				t.Fatalf("%s=%q leaves the configuration unchanged", name, tc.value)
			}
			if !slices.ContainsFunc(changed, read) && !hostReads(t, name) {
				t.Errorf("%s changes %v, which the wiring never reads, and no trigger refers to %%%s%%", name, changed, name)
			}
		})
	}
	for name := range cases {
		t.Errorf("%s has a case but README's settings table does not document it", name)
	}
}
