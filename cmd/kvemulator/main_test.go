package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/twinit/byok-backup/internal/devstack/kvemu"
)

const (
	tenant = "11111111-1111-1111-1111-111111111111"
	app    = "33333333-3333-3333-3333-333333333333"
)

type token string

func (t token) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(t), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// TestRun starts the command like the local stack does, talks to it only
// through what it printed (URL template, CA file) and stops it.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "vaults.json")
	customer := kvemu.CustomerToken(app, tenant)
	cfg := `{"vaults":[{"name":"contoso-kv","tenantId":"` + tenant + `","permissionModel":"rbac",
	  "keys":[{"name":"twinit-backup","kty":"RSA","size":2048}],
	  "grants":[{"caller":"` + customer + `","ops":["get","wrapKey","unwrapKey"]}]}]}`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-ca-out", filepath.Join(dir, "ca.pem"), "-config", cfgPath}, outW, io.Discard)
		outW.Close()
	}()
	line, err := bufio.NewReader(outR).ReadBytes('\n')
	if err != nil {
		t.Fatalf("no ready line: %v (run: %v)", err, <-done)
	}
	go io.Copy(io.Discard, outR)
	var r ready
	if err := json.Unmarshal(line, &r); err != nil {
		t.Fatalf("ready line %q: %v", line, err)
	}
	if !strings.HasPrefix(r.URLTemplate, "https://{vault}.localhost:") || r.CAFile != filepath.Join(dir, "ca.pem") {
		t.Fatalf("ready %+v", r)
	}

	pem, err := os.ReadFile(r.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("CA file holds no certificate")
	}
	hc := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext:     kvemu.LoopbackDialer(&net.Dialer{Timeout: 5 * time.Second}),
	}}
	kc, err := azkeys.NewClient(strings.ReplaceAll(r.URLTemplate, "{vault}", "contoso-kv"), token(customer), &azkeys.ClientOptions{
		ClientOptions:                        azcore.ClientOptions{Transport: hc, Retry: policy.RetryOptions{MaxRetries: -1}},
		DisableChallengeResourceVerification: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	alg := azkeys.EncryptionAlgorithmRSAOAEP256
	w, err := kc.WrapKey(ctx, "twinit-backup", "", azkeys.KeyOperationParameters{Algorithm: &alg, Value: make([]byte, 32)}, nil)
	if err != nil {
		t.Fatalf("wrap through the command: %v", err)
	}

	// Disable the key from "another process" through the control API.
	req, _ := http.NewRequest(http.MethodPost, r.ControlURL+"keys/enabled",
		bytes.NewBufferString(`{"vault":"contoso-kv","name":"twinit-backup","enabled":false}`))
	req.Header.Set("Authorization", "Bearer "+kvemu.AdminToken)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("control: %d", resp.StatusCode)
	}
	_, err = kc.UnwrapKey(ctx, "twinit-backup", w.KID.Version(), azkeys.KeyOperationParameters{Algorithm: &alg, Value: w.Result}, nil)
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 403 || re.ErrorCode != "Forbidden" {
		t.Fatalf("unwrap of a disabled key: %v", err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop after cancel")
	}
	if _, err := net.DialTimeout("tcp", r.Addr, time.Second); err == nil {
		t.Fatal("still listening after stop")
	}
}

func TestRunRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"vaults":[{"name":"kv1","tenantId":"t","model":"rbac"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-addr", "127.0.0.1:0", "-config", bad},
		{"-addr", "127.0.0.1:0", "-config", filepath.Join(dir, "missing.json")},
		{"-addr", "127.0.0.1:0", "-log-level", "loud"},
		{"-addr", "127.0.0.1:0", "extra"},
	} {
		var out bytes.Buffer
		if err := run(context.Background(), args, &out, io.Discard); err == nil {
			t.Errorf("%v: accepted", args)
		}
		if out.Len() != 0 {
			t.Errorf("%v: printed a ready line %q", args, out.String())
		}
	}
}
