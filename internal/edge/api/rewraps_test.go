package api

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/twinit/byok-backup/internal/blobstore/mem"
	catalogmem "github.com/twinit/byok-backup/internal/catalog/mem"
	"github.com/twinit/byok-backup/internal/devstack/devauth"
	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/edge/server"
	"github.com/twinit/byok-backup/internal/job"
	"github.com/twinit/byok-backup/internal/jobqueue"
	"github.com/twinit/byok-backup/internal/keywrap"
	"github.com/twinit/byok-backup/internal/rewrap"
)

type rewrapQueue struct {
	mu   sync.Mutex
	jobs []jobqueue.RewrapJob
}

func (q *rewrapQueue) Enqueue(_ context.Context, name string, msg any) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if name == jobqueue.RewrapQueue {
		q.jobs = append(q.jobs, msg.(jobqueue.RewrapJob))
	}
	return nil
}

// noLeases: the HTTP routes never run a job.
type noLeases struct{ job.Leases }

// TestRewrapRoutes: POST (byok.admin) → 202 with Location and a queued
// message, 409 while one is queued; GET one and the list (byok.read);
// other roles and tenants refused; to: customer needs BYOK active.
func TestRewrapRoutes(t *testing.T) {
	a := newAPI(t)
	a.vault("acme-kv", 2048)
	q := &rewrapQueue{}
	svc, err := rewrap.New(rewrap.Options{Backups: catalogmem.New(), Rewraps: catalogmem.NewRewraps(), Blobs: mem.New(),
		Wrapper: a.wrapper, Keys: a.svc, PlatformKey: keywrap.Ref{VaultURL: "https://platform-kv.vault.azure.net/", KeyName: "p"},
		URLTemplate: a.emu.URLTemplate(), Leases: noLeases{}, Queue: q})
	must(t, err)
	iss := devauth.TestStart(t)
	v, err := auth.NewVerifier(t.Context(), auth.VerifierOptions{JWKSURL: iss.JWKSURL(), Issuer: iss.IssuerURL(), Audience: iss.Audience()})
	must(t, err)
	srv := server.New(server.Config{Auth: v, Logger: a.log})
	Byok(srv.HandleAPI, a.svc)
	Rewraps(srv.HandleAPI, svc)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	a.url, a.iss = ts.URL, iss
	admin, reader := a.token("acme", auth.RoleAdmin), a.token("acme", auth.RoleRead)
	const path = "/api/tenants/acme/byok/rewraps"

	if r := a.do("POST", path, admin, ""); r.status != 409 || r.code(t) != "Conflict" {
		t.Fatalf("to customer with BYOK off = %d %s", r.status, r.body)
	}
	if r := a.do("POST", path, admin, `{"to":"elsewhere"}`); r.status != 400 || r.code(t) != "InvalidRequest" {
		t.Fatalf("bad to = %d %s", r.status, r.body)
	}
	if r := a.do("POST", path, admin, `{"to":"platform","force":true}`); r.status != 400 {
		t.Fatalf("unknown field = %d %s", r.status, r.body)
	}
	for _, tok := range []string{reader, a.token("acme", auth.RoleBackupOperator), a.token("globex", auth.RoleAdmin)} {
		if r := a.do("POST", path, tok, `{"to":"platform"}`); r.status != 403 {
			t.Fatalf("POST without byok.admin on acme = %d", r.status)
		}
	}
	if r := a.do("POST", path, "", `{"to":"platform"}`); r.status != 401 {
		t.Fatalf("POST without a token = %d", r.status)
	}
	if r := a.do("PUT", "/api/tenants/acme/byok", admin, body("acme-kv")); r.status != 200 {
		t.Fatalf("enable BYOK = %d %s", r.status, r.body)
	}
	r := a.do("POST", path, admin, `{"to":"customer","includePlatformBackups":true,"dryRun":true}`)
	if r.status != 202 {
		t.Fatalf("POST = %d %s", r.status, r.body)
	}
	id, _ := r.json(t)["rewrapId"].(string)
	if r.json(t)["state"] != "queued" || r.header.Get("Location") != path+"/"+id || len(q.jobs) != 1 || q.jobs[0].RewrapID != id {
		t.Fatalf("POST = %s, Location %q, jobs %v", r.body, r.header.Get("Location"), q.jobs)
	}
	if r := a.do("POST", path, admin, `{"to":"platform"}`); r.status != 409 || r.code(t) != "Conflict" {
		t.Fatalf("second POST = %d %s", r.status, r.body)
	}
	got := a.do("GET", path+"/"+id, reader, "")
	m := got.json(t)
	if got.status != 200 || m["to"] != "customer" || m["includePlatformBackups"] != true || m["dryRun"] != true || m["state"] != "queued" ||
		!strings.Contains(string(got.body), `"progress":{"total":0,"done":0,"skipped":0,"failed":0}`) || !strings.Contains(string(got.body), `"failures":[]`) {
		t.Fatalf("GET = %d %s", got.status, got.body)
	}
	list := a.do("GET", path+"?maxResults=1", reader, "")
	if list.status != 200 || !strings.Contains(string(list.body), `"rewraps":[{"rewrapId":"`+id) {
		t.Fatalf("list = %d %s", list.status, list.body)
	}
	if r := a.do("GET", path+"/"+id, a.token("globex", auth.RoleRead), ""); r.status != 403 {
		t.Fatalf("other tenant GET = %d", r.status)
	}
	if r := a.do("GET", "/api/tenants/globex/byok/rewraps/"+id, a.token("globex", auth.RoleRead), ""); r.status != 404 {
		t.Fatalf("GET under another tenant = %d %s", r.status, r.body)
	}
}
