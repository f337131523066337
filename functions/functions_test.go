package functions_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/config"
)

type binding struct {
	Name       string   `json:"name"`
	Type       string   `json:"type"`
	Direction  string   `json:"direction"`
	AuthLevel  string   `json:"authLevel"`
	Methods    []string `json:"methods"`
	Route      string   `json:"route"`
	Schedule   string   `json:"schedule"`
	UseMonitor *bool    `json:"useMonitor"`
	RunOnStart *bool    `json:"runOnStartup"`
	QueueName  string   `json:"queueName"`
	Connection string   `json:"connection"`
}

// The API.md §1 table, in the host's terms.
var want = map[string]struct {
	trigger   string
	route     string
	methods   []string
	authLevel string
	schedule  string
	queue     string
}{
	"BackupScheduler": {trigger: "timerTrigger", schedule: "%BACKUP_SCHEDULE%"},
	"ByokMonitor":     {trigger: "timerTrigger", schedule: "%BYOK_MONITOR_SCHEDULE%"},
	"BackupWorker":    {trigger: "queueTrigger", queue: "%QUEUE_BACKUP_JOBS%"},
	"RestoreWorker":   {trigger: "queueTrigger", queue: "%QUEUE_RESTORE_JOBS%"},
	"RewrapWorker":    {trigger: "queueTrigger", queue: "%QUEUE_REWRAP_JOBS%"},
	"Rewraps":         {trigger: "httpTrigger", route: "tenants/{tenant}/byok/rewraps/{rewrapId?}", methods: []string{"get", "post"}, authLevel: "function"},
	"ByokSettings":    {trigger: "httpTrigger", route: "tenants/{tenant}/byok", methods: []string{"delete", "get", "put"}, authLevel: "function"},
	"ByokValidate":    {trigger: "httpTrigger", route: "tenants/{tenant}/byok/validate", methods: []string{"post"}, authLevel: "function"},
	"Backups":         {trigger: "httpTrigger", route: "tenants/{tenant}/backups/{backupId?}", methods: []string{"delete", "get", "post"}, authLevel: "function"},
	// Contract §6: retention, and undelete (a path Backups' route can't match).
	"BackupRetention": {trigger: "timerTrigger", schedule: "%RETENTION_SCHEDULE%"},
	"Retention":       {trigger: "httpTrigger", route: "tenants/{tenant}/retention", methods: []string{"get", "put"}, authLevel: "function"},
	"BackupUndelete":  {trigger: "httpTrigger", route: "tenants/{tenant}/backups/{backupId}/undelete", methods: []string{"post"}, authLevel: "function"},
	"Restores":        {trigger: "httpTrigger", route: "tenants/{tenant}/restores/{restoreId?}", methods: []string{"get", "post"}, authLevel: "function"},
	"Health":          {trigger: "httpTrigger", route: "health", methods: []string{"get"}, authLevel: "anonymous"},
	// Static files only; the page's API calls carry the bearer token.
	"SettingsPage": {trigger: "httpTrigger", route: "ui/{*path}", methods: []string{"get"}, authLevel: "anonymous"},
}

var (
	folderRE  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,127}$`)          // host: function names
	bindingRE = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9]{0,127}|\$return)$`) // host: no _ or - in binding names
)

func TestFunctionDefinitions(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		name := e.Name()
		t.Run(name, func(t *testing.T) {
			if !folderRE.MatchString(name) || strings.EqualFold(name, "host") {
				t.Fatalf("folder name %q is not a valid function name", name)
			}
			b, err := os.ReadFile(filepath.Join(name, "function.json"))
			if err != nil {
				t.Fatal(err)
			}
			var fj struct {
				Bindings []binding `json:"bindings"`
			}
			dec := json.NewDecoder(strings.NewReader(string(b)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&fj); err != nil {
				t.Fatalf("function.json: %v", err)
			}
			w, ok := want[name]
			if !ok {
				t.Fatalf("function %s is not in the contract", name)
			}
			seen[name] = true
			names := map[string]bool{}
			var in, out []binding
			for _, bd := range fj.Bindings {
				if !bindingRE.MatchString(bd.Name) {
					t.Errorf("binding name %q: the host allows only letters and digits", bd.Name)
				}
				if names[strings.ToLower(bd.Name)] {
					t.Errorf("duplicate binding name %q", bd.Name)
				}
				names[strings.ToLower(bd.Name)] = true
				switch bd.Direction {
				case "in":
					in = append(in, bd)
				case "out":
					out = append(out, bd)
				default:
					t.Errorf("binding %q direction %q", bd.Name, bd.Direction)
				}
			}
			if len(in) != 1 || in[0].Type != w.trigger {
				t.Fatalf("want exactly one %s input, got %+v", w.trigger, in)
			}
			trig := in[0]
			switch w.trigger {
			case "httpTrigger":
				// Exactly http-in + http-out, or the host stops forwarding it.
				if len(out) != 1 || out[0].Type != "http" {
					t.Errorf("HTTP function must have exactly one http output, got %+v", out)
				}
				if strings.HasPrefix(trig.Route, "api/") || trig.Route != w.route {
					t.Errorf("route = %q, want %q (no api/ prefix: routePrefix adds it)", trig.Route, w.route)
				}
				m := slices.Clone(trig.Methods)
				slices.Sort(m)
				if !slices.Equal(m, w.methods) {
					t.Errorf("methods = %v, want %v", trig.Methods, w.methods)
				}
				if trig.AuthLevel != w.authLevel {
					t.Errorf("authLevel = %q, want %q", trig.AuthLevel, w.authLevel)
				}
			case "timerTrigger":
				// runOnStartup would fire a backup of every tenant on each restart or scale-out.
				if len(out) != 0 || trig.Schedule != w.schedule || trig.UseMonitor == nil || !*trig.UseMonitor || (trig.RunOnStart != nil && *trig.RunOnStart) {
					t.Errorf("timer = %+v, outputs %v; want schedule %s, useMonitor true, no outputs", trig, out, w.schedule)
				}
			case "queueTrigger":
				if len(out) != 0 || trig.QueueName != w.queue || trig.Connection != "AzureWebJobsStorage" {
					t.Errorf("queue = %+v, outputs %v; want queue %s on AzureWebJobsStorage", trig, out, w.queue)
				}
			}
		})
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("function %s of the contract has no folder", name)
		}
	}
}

func TestHostJSON(t *testing.T) {
	b, err := os.ReadFile("../host.json")
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Version         string `json:"version"`
		FunctionTimeout string `json:"functionTimeout"`
		ExtensionBundle struct {
			ID, Version string
		} `json:"extensionBundle"`
		CustomHandler struct {
			Description struct {
				DefaultExecutablePath string `json:"defaultExecutablePath"`
				WorkingDirectory      string `json:"workingDirectory"`
			} `json:"description"`
			EnableForwardingHTTPRequest bool `json:"enableForwardingHttpRequest"`
		} `json:"customHandler"`
		Extensions struct {
			HTTP struct {
				RoutePrefix *string `json:"routePrefix"`
			} `json:"http"`
			Queues struct {
				MessageEncoding   string `json:"messageEncoding"`
				MaxDequeueCount   int    `json:"maxDequeueCount"`
				VisibilityTimeout string `json:"visibilityTimeout"`
				BatchSize         int    `json:"batchSize"`
				NewBatchThreshold *int   `json:"newBatchThreshold"`
			} `json:"queues"`
		} `json:"extensions"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	if h.Version != "2.0" || h.ExtensionBundle.ID != "Microsoft.Azure.Functions.ExtensionBundle" || h.ExtensionBundle.Version != "[4.*, 5.0.0)" {
		t.Errorf("version/bundle = %q %+v", h.Version, h.ExtensionBundle)
	}
	ch := h.CustomHandler
	if ch.Description.DefaultExecutablePath != "handler" || ch.Description.WorkingDirectory != "" || !ch.EnableForwardingHTTPRequest {
		t.Errorf("customHandler = %+v", ch)
	}
	// The handler derives its server timeouts and deadlines from
	// FUNCTION_TIMEOUT (default 30m): host.json must agree.
	ft, err := time.Parse("15:04:05", h.FunctionTimeout)
	if err != nil {
		t.Fatalf("functionTimeout %q: %v", h.FunctionTimeout, err)
	}
	if d := time.Duration(ft.Hour())*time.Hour + time.Duration(ft.Minute())*time.Minute + time.Duration(ft.Second())*time.Second; d != config.DefaultFunctionTimeout {
		t.Errorf("functionTimeout = %v, want config.DefaultFunctionTimeout %v", d, config.DefaultFunctionTimeout)
	}
	if p := h.Extensions.HTTP.RoutePrefix; p != nil && *p != "api" {
		t.Errorf("routePrefix = %q: API.md's routes start with /api", *p)
	}
	q := h.Extensions.Queues
	if q.MessageEncoding != "base64" || q.MaxDequeueCount != 5 || q.VisibilityTimeout == "" ||
		q.BatchSize < 1 || q.BatchSize > 2 || q.NewBatchThreshold == nil || *q.NewBatchThreshold > 1 {
		t.Errorf("queues = %+v", q)
	}
}

// TestLocalSettingsExample proves the example lists every setting and that
// its values pass the handler's own validation.
func TestLocalSettingsExample(t *testing.T) {
	b, err := os.ReadFile("../local.settings.json.example")
	if err != nil {
		t.Fatal(err)
	}
	var ls struct {
		IsEncrypted bool
		Values      map[string]string
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ls); err != nil {
		t.Fatal(err)
	}
	if ls.Values["FUNCTIONS_WORKER_RUNTIME"] != "custom" {
		t.Errorf("FUNCTIONS_WORKER_RUNTIME = %q", ls.Values["FUNCTIONS_WORKER_RUNTIME"])
	}
	// Every setting the handler reads (the host sets the port).
	var read []string
	_, _ = config.Load(func(k string) string { read = append(read, k); return "" })
	for _, k := range read {
		if strings.HasPrefix(k, "FUNCTIONS_") {
			continue
		}
		if _, ok := ls.Values[k]; !ok {
			t.Errorf("local.settings.json.example lacks %s", k)
		}
	}
	// The CA file is written by the local stack at run time; stand one in.
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, testCA(t), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"FUNCTIONS_CUSTOMHANDLER_PORT": "7072", "KEYVAULT_CA_FILE": ca}
	if _, err := config.Load(func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return ls.Values[k]
	}); err != nil {
		t.Fatalf("the example does not load: %v", err)
	}
}

func testCA(t *testing.T) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
