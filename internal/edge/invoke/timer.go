package invoke

import (
	"encoding/json"
	"time"
)

// TimerInfo is the host's TimerInfo object (azure-webjobs-sdk-extensions
// TimerInfo.cs) as it arrives in Data.<binding>.
type TimerInfo struct {
	Schedule Schedule
	// ScheduleStatus is nil when the function has useMonitor false or a
	// sub-minute schedule.
	ScheduleStatus *ScheduleStatus
	// IsPastDue is only computed when the host starts (sdk-extensions #631).
	IsPastDue bool
}

// Schedule is TimerInfo.Schedule; the host only serializes AdjustForDST.
type Schedule struct {
	AdjustForDST bool
}

// ScheduleStatus is the monitor's record. Before the first run Last is the
// zero time (the host's 0001-01-01).
type ScheduleStatus struct {
	Last, Next, LastUpdated time.Time
}

// TimerRequest is one decoded timer invocation.
type TimerRequest struct {
	Timer TimerInfo
	Sys   Sys
}

type wireTimer struct {
	Schedule       Schedule
	ScheduleStatus *struct {
		Last, Next, LastUpdated lenientTime
	}
	IsPastDue bool
}

// DecodeTimer decodes a timer invocation body. binding names the trigger's
// binding; "" takes the only Data entry.
func DecodeTimer(body []byte, binding string) (*TimerRequest, error) {
	_, raw, sys, err := parsePayload(body, binding)
	if err != nil {
		return nil, err
	}
	raw = []byte(trimSpace(raw))
	// A TimerInfo is an object; tolerate it arriving JSON-encoded as a string.
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, errorf("timer value: %v", err)
		}
		raw = []byte(s)
	}
	var w wireTimer
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, errorf("timer value: %v", err)
	}
	req := &TimerRequest{Sys: sys, Timer: TimerInfo{Schedule: w.Schedule, IsPastDue: w.IsPastDue}}
	if w.ScheduleStatus != nil {
		req.Timer.ScheduleStatus = &ScheduleStatus{
			Last:        w.ScheduleStatus.Last.t,
			Next:        w.ScheduleStatus.Next.t,
			LastUpdated: w.ScheduleStatus.LastUpdated.t,
		}
	}
	return req, nil
}
