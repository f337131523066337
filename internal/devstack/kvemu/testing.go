package kvemu

import (
	"crypto/rsa"
	"sync"
	"testing"
)

// TestStart starts an emulator for a test and closes it at cleanup. It
// fails the test if the emulator cannot start. Its RSA keys come from a
// pool shared by every emulator in the test binary: within one emulator
// every key version has distinct key material, but 3072/4096-bit keys are
// generated once per binary rather than once per test.
func TestStart(t testing.TB) *Emulator {
	t.Helper()
	var mu sync.Mutex
	next := map[int]int{} // bits → index of the next pool key for this emulator
	e, err := Start(Options{RSAKey: func(bits int) (*rsa.PrivateKey, error) {
		mu.Lock()
		i := next[bits]
		next[bits]++
		mu.Unlock()
		return testKeys.get(bits, i)
	}})
	if err != nil {
		t.Fatalf("kvemu: failed to start the Key Vault emulator: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// testKeys is the one piece of package state: a cache of immutable test
// keys, so that a test binary pays for RSA key generation once per key it
// needs at the same time, not once per test.
var testKeys keyPool

type keyPool struct {
	mu   sync.Mutex
	keys map[int][]*rsa.PrivateKey
}

// get returns the i-th pooled key of size bits, generating up to it.
func (p *keyPool) get(bits, i int) (*rsa.PrivateKey, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.keys == nil {
		p.keys = map[int][]*rsa.PrivateKey{}
	}
	for len(p.keys[bits]) <= i {
		k, err := generateRSA(bits)
		if err != nil {
			return nil, err
		}
		p.keys[bits] = append(p.keys[bits], k)
	}
	return p.keys[bits][i], nil
}
