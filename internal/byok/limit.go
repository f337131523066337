package byok

import (
	"math"
	"strconv"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"

	"github.com/twinit/byok-backup/internal/errcode"
)

// Defaults of the per-tenant limit on key validations (PUT and validate):
// a burst of DefaultValidateBurst, refilled at one every
// DefaultValidateEvery. They bound how fast one tenant can probe vaults
// (API.md §5) while leaving room for a customer fixing a key by trial.
const (
	DefaultValidateBurst  = 10
	DefaultValidateEvery  = 6 * time.Second
	DefaultLimitedTenants = 10_000
)

// ThrottledError is a request refused by the per-tenant limit; HTTP
// answers 429 Throttled with Retry-After.
type ThrottledError struct {
	RetryAfter time.Duration
	Err        *errcode.Error
}

func (e *ThrottledError) Error() string { return e.Err.Error() }

func (e *ThrottledError) Unwrap() error { return e.Err }

// RetryAfterSeconds is the Retry-After header value: whole seconds, at least 1.
func (e *ThrottledError) RetryAfterSeconds() string {
	return strconv.Itoa(max(1, int(math.Ceil(e.RetryAfter.Seconds()))))
}

// tenantLimiter holds one token bucket per tenant. The map is an LRU so
// that many tenants can't grow memory; a tenant dropped from it starts
// again with a full bucket, which only happens after DefaultLimitedTenants
// other tenants were seen more recently.
type tenantLimiter struct {
	every time.Duration
	burst int

	mu   sync.Mutex
	lims *lru.Cache[string, *rate.Limiter]
}

func newTenantLimiter(every time.Duration, burst, size int) (*tenantLimiter, error) {
	lims, err := lru.New[string, *rate.Limiter](size)
	if err != nil {
		return nil, err
	}
	return &tenantLimiter{every: every, burst: burst, lims: lims}, nil
}

// take spends one token of tenant's bucket at now, or returns how long
// until one is available (and spends nothing).
func (l *tenantLimiter) take(tenant string, now time.Time) time.Duration {
	l.mu.Lock()
	lim, ok := l.lims.Get(tenant)
	if !ok {
		lim = rate.NewLimiter(rate.Every(l.every), l.burst)
		l.lims.Add(tenant, lim)
	}
	l.mu.Unlock()
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return l.every
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}

// throttle refuses a key validation of tenant beyond its rate.
func (s *Service) throttle(tenant string) error {
	d := s.limiter.take(tenant, s.now())
	if d <= 0 {
		return nil
	}
	e := &ThrottledError{RetryAfter: d}
	e.Err = errcode.New(errcode.Throttled,
		"Too many key validations for tenant %s: try again in %s seconds.", tenant, e.RetryAfterSeconds())
	return e
}
