package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	assetsazure "github.com/twinit/byok-backup/internal/assets/azure"
	"github.com/twinit/byok-backup/internal/devstack/seed"
	"github.com/twinit/byok-backup/internal/jobqueue"
	"github.com/twinit/byok-backup/internal/tenants"
	tenantstable "github.com/twinit/byok-backup/internal/tenants/aztable"
)

// The wired app end to end: POST …/byok/rewraps queues on
// QUEUE_REWRAP_JOBS, RewrapWorker runs the message as the host delivers
// it, GET …/byok/rewraps/{id} and GET …/byok show the outcome.
func TestRewrapThroughTheApp(t *testing.T) {
	e := newSweepEnv(t)
	ctx := t.Context()
	h, cfg := e.handler(map[string]string{"QUEUE_REWRAP_JOBS": "nightly-rewraps"})
	dir := tenantstable.New(e.tables.NewClient(cfg.Names.TableTenants), nil)
	store := assetsazure.New(e.tables.NewClient(cfg.Names.TableAssets), e.blobs.ServiceClient().NewContainerClient(cfg.Names.ContainerAssets), nil)
	check(t, store.Ensure(ctx))
	check(t, dir.Put(ctx, tenants.Tenant{ID: "acme", BackupEnabled: true}))
	_, err := seed.Tenant(ctx, store, "acme", seed.Options{Records: 3, Seed: 4})
	check(t, err)
	e.fireTimer(h, "BackupScheduler")
	if n := e.runJobs(h, cfg); n != 1 {
		t.Fatalf("ran %d backups", n)
	}

	tok, err := e.issuer.Token("acme", "byok.admin")
	check(t, err)
	call := func(method, path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequestWithContext(ctx, method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	rec := call(http.MethodPost, "/api/tenants/acme/byok/rewraps", `{"to":"platform"}`)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("POST = %d %s", rec.Code, rec.Body)
	}
	var started struct{ RewrapID string }
	check(t, json.Unmarshal(rec.Body.Bytes(), &started))
	if e.waiting("nightly-rewraps") != 1 || e.waiting(jobqueue.RewrapQueue) != 0 {
		t.Fatal("the re-wrap message is not on QUEUE_REWRAP_JOBS")
	}
	qc := e.queues.NewQueueClient("nightly-rewraps")
	n := int32(1)
	resp, err := qc.DequeueMessages(ctx, &azqueue.DequeueMessagesOptions{NumberOfMessages: &n})
	check(t, err)
	m := resp.Messages[0]
	text, err := base64.StdEncoding.DecodeString(*m.MessageText)
	check(t, err)
	once, _ := json.Marshal(string(text))
	twice, _ := json.Marshal(string(once))
	id, _ := json.Marshal(strconv.Quote(*m.MessageID))
	post(t, h, "RewrapWorker", fmt.Sprintf(`{"Data":{"job":%s},"Metadata":{"DequeueCount":"1","Id":%s,"sys":{"MethodName":"RewrapWorker","UtcNow":%q}}}`,
		twice, id, e.clock.Now().UTC().Format(time.RFC3339Nano)))

	rec = call(http.MethodGet, "/api/tenants/acme/byok/rewraps/"+started.RewrapID, "")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"state":"succeeded"`) ||
		!strings.Contains(rec.Body.String(), `"progress":{"total":1,"done":0,"skipped":1,"failed":0}`) {
		t.Fatalf("GET rewrap = %d %s", rec.Code, rec.Body)
	}
	rec = call(http.MethodGet, "/api/tenants/acme/byok", "")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"backups":{"customer":0,"platform":1,"olderCustomerKeys":0}`) {
		t.Fatalf("GET byok = %d %s", rec.Code, rec.Body)
	}
}
