// Package kvemu is a Key Vault emulator for local runs and tests: the keys
// data plane that azkeys v1.5.0 speaks (api-version 2025-07-01), over HTTPS
// with its own CA, many vaults on one listener selected by host name
// ("<vault>.localhost:<port>"), the real 401 challenge, RSA/RSA-HSM keys with
// versions and the real error bodies, plus what makes BYOK tests meaningful:
// per-caller grants that can be revoked, key disable/expiry/key_ops, and
// fault switches (latency, 429, 5xx, unreachable vault).
//
// # Callers
//
// Bearer tokens are not JWTs. "emulator.admin" ([AdminToken]) owns every
// vault; "emulator.platform" ([PlatformToken]) is the platform identity;
// "emulator.<applicationId>.<entraTenantId>" ([CustomerToken]) is a customer
// application signed in to a tenant. The caller id is the token without
// "emulator.". A customer token for another tenant than the vault's gets the
// service's 401 AKV10032; a caller without a grant for an operation gets 403
// with innererror ForbiddenByPolicy or ForbiddenByRbac (by permission model).
//
// # Request pipeline
//
//	host "control.localhost" or path "/_emulator/..."  -> control API (admin token)
//	unknown vault, or Fault.Down                       -> connection closed, no response
//	Fault.Latency                                      -> wait
//	no Authorization                                   -> 401 challenge (body not read)
//	bad token / wrong tenant                           -> 401
//	Fault.Throttle, Fault.ServerError                  -> 429 / 5xx
//	api-version not 2025-07-01 or 7.x                  -> 400 BadParameter
//	route -> operation -> grant check -> key checks    -> answer
//
// Faults count only authenticated requests, so "Throttle: 1" throttles the
// next real operation, not a challenge probe.
package kvemu

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// Options configure [Start].
type Options struct {
	Addr   string       // "127.0.0.1:0" by default
	Logger *slog.Logger // nil = discard

	// RSAKey, when set, supplies RSA private keys instead of generating a
	// fresh one per key version. Tests use it to avoid paying for 4096-bit
	// key generation again and again (see [TestStart]). Every call must
	// return a key distinct from the ones this emulator already holds, or
	// versions would share key material.
	RSAKey func(bits int) (*rsa.PrivateKey, error)

	// Now, when set, is the emulator's clock (nbf/exp checks, created and
	// updated times). Defaults to time.Now.
	Now func() time.Time
}

// Emulator is a running Key Vault emulator. Its methods are safe for
// concurrent use.
type Emulator struct {
	log     *slog.Logger
	ln      net.Listener
	srv     *http.Server
	port    int
	ca      *authority
	rsaKey  func(bits int) (*rsa.PrivateKey, error)
	now     func() time.Time
	closing chan struct{}
	once    sync.Once
	done    chan struct{}

	mu     sync.Mutex
	vaults map[string]*vault
	faults map[string]*faultState // "" = every vault
	reqs   []Request
}

// Start runs an emulator: HTTPS on opts.Addr (default "127.0.0.1:0") with a
// server certificate from its own CA for localhost, *.localhost and
// 127.0.0.1.
func Start(opts Options) (*Emulator, error) {
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ca, err := newAuthority()
	if err != nil {
		return nil, fmt.Errorf("kvemu: failed to create the emulator CA: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("kvemu: failed to listen on %s: %w", addr, err)
	}
	e := &Emulator{
		log:     log,
		ln:      ln,
		port:    ln.Addr().(*net.TCPAddr).Port,
		ca:      ca,
		rsaKey:  opts.RSAKey,
		now:     opts.Now,
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		vaults:  map[string]*vault{},
		faults:  map[string]*faultState{},
	}
	if e.rsaKey == nil {
		e.rsaKey = generateRSA
	}
	if e.now == nil {
		e.now = time.Now
	}
	e.srv = &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		// HTTP/1.1 only: a vault that is "down" hijacks and closes the
		// connection, which HTTP/2 cannot do.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{ca.serverCert},
			NextProtos:   []string{"http/1.1"},
			MinVersion:   tls.VersionTLS12,
		},
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		BaseContext: func(net.Listener) context.Context {
			return context.Background()
		},
	}
	go func() {
		defer close(e.done)
		err := e.srv.ServeTLS(ln, "", "")
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("kvemu: server stopped", "error", err)
		}
	}()
	log.Info("kvemu: listening", "addr", e.Addr())
	return e, nil
}

// Close stops the emulator and closes every connection.
func (e *Emulator) Close() error {
	var err error
	e.once.Do(func() {
		close(e.closing)
		err = e.srv.Close()
		<-e.done
	})
	return err
}

// Port is the listening TCP port.
func (e *Emulator) Port() int { return e.port }

// Addr is "127.0.0.1:<port>" (the listening address).
func (e *Emulator) Addr() string { return e.ln.Addr().String() }

// VaultURL is "https://<vault>.localhost:<port>/".
func (e *Emulator) VaultURL(vault string) string {
	return "https://" + vault + ".localhost:" + strconv.Itoa(e.port) + "/"
}

// URLTemplate is "https://{vault}.localhost:<port>/", for KEYVAULT_URL_TEMPLATE.
func (e *Emulator) URLTemplate() string { return e.VaultURL("{vault}") }

// CAPEM is the PEM of the emulator's CA certificate, for KEYVAULT_CA_FILE.
func (e *Emulator) CAPEM() []byte { return append([]byte(nil), e.ca.certPEM...) }

// WriteCA writes [Emulator.CAPEM] to path (mode 0644: a CA certificate is public).
func (e *Emulator) WriteCA(path string) error {
	if err := os.WriteFile(path, e.ca.certPEM, 0o644); err != nil {
		return fmt.Errorf("kvemu: failed to write the CA to %s: %w", path, err)
	}
	return nil
}

// HTTPClient returns a client that trusts the emulator's CA and dials every
// "*.localhost" (and "localhost") host on 127.0.0.1, keeping the port: the
// system resolver here does not resolve *.localhost. It suits
// azcore.ClientOptions.Transport.
func (e *Emulator) HTTPClient() *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(e.ca.cert)
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		DialContext:         LoopbackDialer(&net.Dialer{Timeout: 5 * time.Second}),
		TLSHandshakeTimeout: 5 * time.Second,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}}
}

// LoopbackDialer returns a DialContext that sends "localhost" and
// "*.localhost" (RFC 6761 loopback names) to 127.0.0.1 on the same port and
// dials anything else normally.
func LoopbackDialer(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err == nil && isLocalhost(host) {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return d.DialContext(ctx, network, addr)
	}
}

// sleep waits d, or less if the request or the emulator ends first.
func (e *Emulator) sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-e.closing:
	}
}
