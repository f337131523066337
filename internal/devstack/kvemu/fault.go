package kvemu

import (
	"net/http"
	"strings"
	"time"
)

// Fault makes a vault misbehave. The zero Fault clears every switch.
type Fault struct {
	Latency     time.Duration // added before answering (any request, challenge probes included)
	Throttle    int           // answer this many following requests with 429 Throttled (-1 = always)
	RetryAfter  bool          // send "Retry-After: 1" with the 429s
	ServerError int           // answer this many following requests with a 5xx (-1 = always)
	ServerCode  int           // the 5xx status for ServerError: 500 (default), 502, 503 or 504
	Down        bool          // close connections without answering (unreachable vault)
}

type faultState struct{ f Fault }

// SetFault sets the fault switches of vault ("" = every vault, checked
// before the vault's own). Throttle and ServerError count authenticated
// requests only.
func (e *Emulator) SetFault(vaultName string, f Fault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	vaultName = strings.ToLower(vaultName)
	if f == (Fault{}) {
		delete(e.faults, vaultName)
		return
	}
	e.faults[vaultName] = &faultState{f: f}
}

// connFault reports the connection-level switches for vault: down, and the
// latency to add.
func (e *Emulator) connFault(vaultName string) (down bool, latency time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, n := range []string{"", vaultName} {
		if s := e.faults[n]; s != nil {
			down = down || s.f.Down
			latency = max(latency, s.f.Latency)
		}
	}
	return down, latency
}

// takeFault consumes one throttle or server error for vault, if any is
// pending, and returns the error to answer with.
func (e *Emulator) takeFault(vaultName string) (*apiError, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, n := range []string{"", vaultName} {
		s := e.faults[n]
		if s == nil {
			continue
		}
		if s.f.Throttle != 0 {
			if s.f.Throttle > 0 {
				s.f.Throttle--
			}
			return errorf(http.StatusTooManyRequests, "Throttled", "",
				"Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached"), s.f.RetryAfter
		}
		if s.f.ServerError != 0 {
			if s.f.ServerError > 0 {
				s.f.ServerError--
			}
			switch s.f.ServerCode {
			case http.StatusBadGateway:
				return errorf(s.f.ServerCode, "BadGateway", "", "The service could not reach a dependency. Retry the request."), false
			case http.StatusServiceUnavailable:
				return errorf(s.f.ServerCode, "ServiceUnavailable", "", "The service is temporarily unavailable. Retry the request."), false
			case http.StatusGatewayTimeout:
				return errorf(s.f.ServerCode, "GatewayTimeout", "", "The service did not answer in time. Retry the request."), false
			}
			return errorf(http.StatusInternalServerError, "InternalServerError", "", "The service encountered an internal error. Retry the request."), false
		}
	}
	return nil, false
}
