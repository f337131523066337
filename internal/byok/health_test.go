package byok

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/devstack/kvemu"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keywrap"
)

func TestPlatformKeyCheckCaches(t *testing.T) {
	e := newEnv(t, envOptions{})
	must(t, e.emu.CreateVault("platform-kv", entraA, kvemu.AccessPolicy))
	_, err := e.emu.CreateKey("platform-kv", "platform", "RSA", 2048, nil)
	must(t, err)
	must(t, e.emu.Grant("platform-kv", kvemu.PlatformToken, "get", "wrapKey", "unwrapKey"))
	ref := keywrap.Ref{Source: keywrap.Platform, VaultURL: e.emu.VaultURL("platform-kv"), KeyName: "platform"}

	var mu sync.Mutex
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	c := NewPlatformKeyCheck(e.wrapper, ref, &PlatformKeyCheckOptions{TTL: time.Minute, Now: clock})

	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if err := c.Check(bg()); err != nil {
				t.Errorf("Check: %v", err)
			}
		})
	}
	wg.Wait()
	if n := e.emu.CountOps("platform-kv", "wrapKey"); n != 1 {
		t.Fatalf("10 concurrent probes wrapped %d times, want 1", n)
	}

	must(t, e.emu.SetEnabled("platform-kv", "platform", "", false))
	advance(30 * time.Second)
	if err := c.Check(bg()); err != nil {
		t.Fatalf("cached result within the TTL: %v", err)
	}
	advance(31 * time.Second)
	err = c.Check(bg())
	if errcode.CodeOf(err) != errcode.KeyDisabled {
		t.Fatalf("after the TTL with the key disabled: %v, want KeyDisabled", err)
	}
	if _, msg := errcode.Public(err); !strings.HasPrefix(msg, "The platform key") || strings.Contains(msg, "localhost") {
		t.Fatalf("health message %q leaks details", msg)
	}
	must(t, e.emu.SetEnabled("platform-kv", "platform", "", true))
	if err := c.Check(bg()); err == nil {
		t.Fatal("a failure was not cached")
	}
	advance(time.Minute)
	if err := c.Check(bg()); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}
