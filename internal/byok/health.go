package byok

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"sync"
	"time"

	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// PlatformKeyCheck is the Health checker for the platform key: a wrap and
// unwrap round trip of random bytes, cached so that health probes don't
// hammer Key Vault.
type PlatformKeyCheck struct {
	wrapper keywrap.Wrapper
	ref     keywrap.Ref
	ttl     time.Duration
	now     func() time.Time

	mu      sync.Mutex // held during a check, so concurrent probes share one
	checked time.Time
	last    error
}

// PlatformKeyCheckOptions tunes [NewPlatformKeyCheck]; nil means defaults.
type PlatformKeyCheckOptions struct {
	// TTL is how long a result is reused; 0 means 60 s.
	TTL time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// NewPlatformKeyCheck returns the checker for the platform key ref (from
// PLATFORM_KEY_ID), used through w.
func NewPlatformKeyCheck(w keywrap.Wrapper, ref keywrap.Ref, opts *PlatformKeyCheckOptions) *PlatformKeyCheck {
	c := &PlatformKeyCheck{wrapper: w, ref: ref, ttl: 60 * time.Second, now: time.Now}
	if opts != nil && opts.TTL > 0 {
		c.ttl = opts.TTL
	}
	if opts != nil && opts.Now != nil {
		c.now = opts.Now
	}
	return c
}

// Check reports whether the platform key wraps and unwraps, from a cached
// result younger than the TTL when there is one. The error is an
// *errcode.Error whose message names no secret and no tenant.
func (c *PlatformKeyCheck) Check(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.checked.IsZero() && c.now().Sub(c.checked) < c.ttl {
		return c.last
	}
	err := c.roundTrip(ctx)
	if ctx.Err() != nil {
		return err // the probe gave up: don't cache its verdict
	}
	c.checked, c.last = c.now(), err
	return err
}

func (c *PlatformKeyCheck) roundTrip(ctx context.Context) error {
	probe := make([]byte, 32)
	rand.Read(probe)
	w, err := c.wrapper.Wrap(ctx, c.ref, probe)
	if err != nil {
		return errcode.Wrap(err, errcode.CodeOf(err), "The platform key can't wrap keys.")
	}
	back, err := c.wrapper.Unwrap(ctx, c.ref, w)
	if err != nil {
		return errcode.Wrap(err, errcode.CodeOf(err), "The platform key can't unwrap keys.")
	}
	defer clear(back)
	if subtle.ConstantTimeCompare(back, probe) != 1 {
		return errcode.Wrap(errors.New("unwrapped bytes differ"), errcode.Internal, "The platform key returned a different key on unwrap.")
	}
	return nil
}
