package main

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/app"
	"github.com/twinit/byok-backup/internal/config"
	"github.com/twinit/byok-backup/internal/devstack/azurite"
	"github.com/twinit/byok-backup/internal/devstack/devauth"
	"github.com/twinit/byok-backup/internal/devstack/kvemu"
	"github.com/twinit/byok-backup/internal/testing/logtest"
)

// The test binary doubles as the handler: re-executed with this variable
// set, it runs main, so the tests drive the real process (signals, exit
// codes, stdout logs) without a separate build.
const runMainEnv = "BYOK_HANDLER_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

type handlerProc struct {
	cmd  *exec.Cmd
	out  *logtest.Buffer
	base string
	done chan error
}

func startHandler(t *testing.T, env map[string]string) *handlerProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = []string{runMainEnv + "=1", "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &handlerProc{cmd: cmd, out: &logtest.Buffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	if port := env["FUNCTIONS_CUSTOMHANDLER_PORT"]; port != "" {
		p.base = "http://127.0.0.1:" + port
	}
	return p
}

func freePort(t *testing.T) string {
	t.Helper()
	port, err := azurite.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return strconv.Itoa(port)
}

// waitReady polls GET / like the host does (any response counts).
func (p *handlerProc) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(p.base + "/")
		if err == nil {
			resp.Body.Close()
			return
		}
		select {
		case err := <-p.done:
			t.Fatalf("handler exited before it was ready: %v\n%s", err, p.out)
		case <-time.After(25 * time.Millisecond):
		}
	}
	t.Fatalf("handler not ready within 30s\n%s", p.out)
}

func TestHandlerRunsAndDrains(t *testing.T) {
	az := azurite.TestStart(t)
	iss := devauth.TestStart(t)
	kv := kvemu.TestStart(t)
	if err := kv.CreateVault("platform-kv", "00000000-0000-0000-0000-000000000001", kvemu.AccessPolicy); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.CreateKey("platform-kv", "platform-backup", "RSA", 2048, nil); err != nil {
		t.Fatal(err)
	}
	if err := kv.Grant("platform-kv", kvemu.PlatformToken, "get", "wrapKey", "unwrapKey"); err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "kv-ca.pem")
	if err := kv.WriteCA(caFile); err != nil {
		t.Fatal(err)
	}
	platformKeyID := strings.ReplaceAll(kv.URLTemplate(), "{vault}", "platform-kv") + "keys/platform-backup"
	port := freePort(t)
	p := startHandler(t, map[string]string{
		"FUNCTIONS_CUSTOMHANDLER_PORT": port,
		"AzureWebJobsStorage":          az.ConnectionString(),
		"PLATFORM_KEY_ID":              platformKeyID,
		"PLATFORM_CREDENTIAL":          "emulator",
		"BYOK_APP_CLIENT_ID":           "4ab9f542-0305-4d62-94c9-69786fb5d1ec",
		"BYOK_CREDENTIAL":              "emulator",
		"KEYVAULT_URL_TEMPLATE":        kv.URLTemplate(),
		"KEYVAULT_CA_FILE":             caFile,
		"AUTH_ISSUER":                  iss.IssuerURL(),
		"AUTH_AUDIENCE":                iss.Audience(),
		"AUTH_JWKS_URL":                iss.JWKSURL(),
	})
	p.waitReady(t)

	get := func(path string) (int, string, string) {
		resp, err := http.Get(p.base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	if code, ct, _ := get("/"); code != 200 || ct != "application/json" {
		t.Errorf("GET / = %d %s", code, ct)
	}
	code, ct, body := get("/api/health")
	if code != 200 || ct != "application/json" || !strings.Contains(body, `"storage":"ok"`) || !strings.Contains(body, `"platformKey":"ok"`) {
		t.Errorf("GET /api/health = %d %s %s\n%s", code, ct, body, p.out)
	}
	// A job message that is not a job fails the invocation so the host
	// retries it and, in the end, moves it to the poison queue.
	resp, err := http.Post(p.base+"/BackupWorker", "application/json", strings.NewReader(`{"Data":{"job":"\"{}\""},"Metadata":{"DequeueCount":"1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		t.Errorf("BackupWorker with an empty job = %d, want a failure", resp.StatusCode)
	}
	// The BYOK routes are wired and demand a token.
	if code, _, _ := get("/api/tenants/acme/byok"); code != 401 {
		t.Errorf("GET byok without a token = %d, want 401", code)
	}
	req, _ := http.NewRequest("GET", p.base+"/api/tenants/acme/byok", nil)
	tok, err := iss.Token("acme", "byok.read")
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"state":"disabled"`) ||
		!strings.Contains(string(b), `"ownership":{"tagName":"twinit-tenants","tagValue":"acme"}`) {
		t.Errorf("GET byok = %d %s", resp.StatusCode, b)
	}

	// The startup line shows the effective config without the account key.
	out := p.out.String()
	if !strings.Contains(out, `"msg":"starting"`) || !strings.Contains(out, `"platformKeyId":"`+platformKeyID+`"`) {
		t.Errorf("no startup config line:\n%s", out)
	}
	if strings.Contains(out, azurite.AccountKey) {
		t.Errorf("the account key is in the log")
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.out)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("handler did not stop after SIGTERM\n%s", p.out)
	}
	if !strings.Contains(p.out.String(), "shut down cleanly") {
		t.Errorf("no clean shutdown line:\n%s", p.out)
	}
}

func TestHandlerBadConfigExits1(t *testing.T) {
	p := startHandler(t, map[string]string{
		"FUNCTIONS_CUSTOMHANDLER_PORT": "not-a-port",
		"AzureWebJobsStorage":          "UseDevelopmentStorage=true",
		"BACKUP_CHUNK_SIZE":            "16MiB",
	})
	select {
	case err := <-p.done:
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 1 {
			t.Fatalf("exit = %v, want status 1", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("handler with bad settings did not exit")
	}
	var problems []string
	sc := bufio.NewScanner(strings.NewReader(p.out.String()))
	for sc.Scan() {
		var line struct{ Msg, Problem string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "invalid setting" {
			problems = append(problems, line.Problem)
		}
	}
	for _, want := range []string{"FUNCTIONS_CUSTOMHANDLER_PORT:", "BACKUP_CHUNK_SIZE:", "PLATFORM_KEY_ID:", "BYOK_APP_CLIENT_ID:", "AUTH_ISSUER:", "AUTH_AUDIENCE:", "AUTH_JWKS_URL:"} {
		found := false
		for _, p := range problems {
			found = found || strings.HasPrefix(p, want)
		}
		if !found {
			t.Errorf("no logged problem for %s in %q", want, problems)
		}
	}
}

// TestMaxDequeueCountMatchesHost: the workers mark a job failed on the
// host's last delivery; if host.json said otherwise, jobs would either fail
// early or vanish into the poison queue with their rows left running.
func TestMaxDequeueCountMatchesHost(t *testing.T) {
	b, err := os.ReadFile("../host.json")
	if err != nil {
		t.Fatal(err)
	}
	var host struct {
		Extensions struct {
			Queues struct {
				MaxDequeueCount int `json:"maxDequeueCount"`
			} `json:"queues"`
		} `json:"extensions"`
	}
	if err := json.Unmarshal(b, &host); err != nil {
		t.Fatal(err)
	}
	if host.Extensions.Queues.MaxDequeueCount != app.MaxDequeueCount {
		t.Fatalf("host.json maxDequeueCount = %d, handler assumes %d", host.Extensions.Queues.MaxDequeueCount, app.MaxDequeueCount)
	}
}

// An empty BYOK_OWNERSHIP_TAG is logged as a warning at startup (API.md §5).
func TestOwnershipOffWarns(t *testing.T) {
	for _, tag := range []string{"", "twinit-tenants"} {
		buf := &logtest.Buffer{}
		warnSettings(config.Config{ByokOwnershipTag: tag}, slog.New(slog.NewJSONHandler(buf, nil)))
		w := buf.Records("key ownership check is off")
		if tag == "" && (len(w) != 1 || w[0]["level"] != "WARN") {
			t.Fatalf("no warning with the check off: %s", buf)
		}
		if tag != "" && len(w) != 0 {
			t.Fatalf("warning with the check on: %s", buf)
		}
	}
}

// TestLogFormat: LOG_FORMAT=text makes the handler's lines slog text
// (key=value), json (and the default) one JSON object a line. A handler
// with a bad port logs its problems and exits: enough lines to judge.
func TestLogFormat(t *testing.T) {
	for _, format := range []string{"", "json", "text"} {
		t.Run("format="+format, func(t *testing.T) {
			env := map[string]string{"FUNCTIONS_CUSTOMHANDLER_PORT": "not-a-port", "AzureWebJobsStorage": "UseDevelopmentStorage=true"}
			if format != "" {
				env["LOG_FORMAT"] = format
			}
			p := startHandler(t, env)
			if err := <-p.done; err == nil {
				t.Fatal("handler with a bad port exited 0")
			}
			lines := strings.Split(strings.TrimSpace(p.out.String()), "\n")
			if len(lines) < 2 {
				t.Fatalf("too few lines to judge: %q", lines)
			}
			for _, l := range lines {
				var obj map[string]any
				isJSON := json.Unmarshal([]byte(l), &obj) == nil
				if format == "text" {
					if isJSON || !strings.HasPrefix(l, "time=") || !strings.Contains(l, " level=") {
						t.Fatalf("LOG_FORMAT=text wrote %q", l)
					}
				} else if !isJSON || obj["msg"] == nil || obj["level"] == nil {
					t.Fatalf("LOG_FORMAT=%q wrote a line that is no JSON log record: %q", format, l)
				}
			}
			want := `msg="invalid setting"`
			if format != "text" {
				want = `"msg":"invalid setting"`
			}
			if !strings.Contains(p.out.String(), want) {
				t.Fatalf("no %s line:\n%s", want, p.out)
			}
		})
	}
}
