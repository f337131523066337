package invoke

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v.UTC()
}

func TestDecodeQueueCaptured(t *testing.T) {
	// Captured from Core Tools 4.0.6610 / host 4.1036.1 (research §3.4).
	req, err := DecodeQueue(readTestdata(t, "queue_captured.json"), "queue")
	if err != nil {
		t.Fatal(err)
	}
	m := req.Message
	if string(m.Text) != "hello!!" {
		t.Errorf("Text = %q, want %q", m.Text, "hello!!")
	}
	if m.ID != "52d53c5f-e212-487e-998b-abbe3b9d51e4" {
		t.Errorf("ID = %q", m.ID)
	}
	if m.PopReceipt != "MThGZWIyMDI1MDM6MDY6MjA3NjM1" {
		t.Errorf("PopReceipt = %q", m.PopReceipt)
	}
	if m.DequeueCount != 1 {
		t.Errorf("DequeueCount = %d", m.DequeueCount)
	}
	if want := mustTime(t, "2025-02-18T03:06:19Z"); !m.InsertionTime.Equal(want) {
		t.Errorf("InsertionTime = %v, want %v", m.InsertionTime, want)
	}
	if want := mustTime(t, "2025-02-25T03:06:19Z"); !m.ExpirationTime.Equal(want) {
		t.Errorf("ExpirationTime = %v", m.ExpirationTime)
	}
	if want := mustTime(t, "2025-02-18T03:16:20Z"); !m.NextVisibleTime.Equal(want) {
		t.Errorf("NextVisibleTime = %v", m.NextVisibleTime)
	}
	if req.Sys.MethodName != "queue" || req.Sys.RandGuid != "e59556b5-892a-4465-a19d-4396f0978dab" {
		t.Errorf("Sys = %+v", req.Sys)
	}
	if want := mustTime(t, "2025-02-18T03:06:20.7562691Z"); !req.Sys.UtcNow.Equal(want) {
		t.Errorf("UtcNow = %v, want %v", req.Sys.UtcNow, want)
	}
}

func TestDecodeQueueJobs(t *testing.T) {
	tests := []struct {
		file, binding string
		wantText      string
		wantID        string
		wantPop       string
		wantCount     int
	}{
		{"queue_job_double.json", "job",
			`{"tenant":"acme","backupId":"01JMB7Q5ZK3V8Y2W4T6R9P0N1M","reason":"manual","requestedAt":"2025-02-18T03:06:19Z"}`,
			"0c4b9e2a-8f3d-4d7e-a1b2-c3d4e5f60718", "AgAAAAMAAAAAAAAA", 3},
		// The documentation's shape: single-encoded text, numeric DequeueCount, bare Id.
		{"queue_job_single_doc.json", "",
			`{"tenant":"acme","restoreId":"01JMB7Q5ZK3V8Y2W4T6R9P0N1Z"}`,
			"800ae4b3-bdd2-4c08-badd-f08e5a34b865", "AgAAAAMAAAAAAAAA", 1},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			req, err := DecodeQueue(readTestdata(t, tt.file), tt.binding)
			if err != nil {
				t.Fatal(err)
			}
			m := req.Message
			if string(m.Text) != tt.wantText {
				t.Errorf("Text = %s, want %s", m.Text, tt.wantText)
			}
			if !json.Valid(m.Text) {
				t.Errorf("Text is not the producer's JSON")
			}
			if m.ID != tt.wantID || m.PopReceipt != tt.wantPop || m.DequeueCount != tt.wantCount {
				t.Errorf("ID, PopReceipt, DequeueCount = %q, %q, %d", m.ID, m.PopReceipt, m.DequeueCount)
			}
			if m.InsertionTime.IsZero() || m.InsertionTime.Location() != time.UTC {
				t.Errorf("InsertionTime = %v, want a UTC time", m.InsertionTime)
			}
		})
	}
}

func TestDecodeQueueEncodings(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"double-encoded string", `"\"hello\""`, "hello"},
		{"double-encoded object", `"\"{\\\"a\\\":1}\""`, `{"a":1}`},
		{"single-encoded object", `"{\"a\":1}"`, `{"a":1}`},
		{"single-encoded text", `"plain text"`, "plain text"},
		{"object value", `{"a":1}`, `{"a":1}`},
		{"text that is a JSON string", `"\"\\\"quoted\\\"\""`, `"quoted"`},
		{"empty message", `"\"\""`, ""},
		{"unicode", `"\"caf\u00e9 \\u2713\""`, "café ✓"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"Data":{"job":` + tt.data + `},"Metadata":{"DequeueCount":"2"}}`
			req, err := DecodeQueue([]byte(body), "job")
			if err != nil {
				t.Fatal(err)
			}
			if string(req.Message.Text) != tt.want {
				t.Errorf("Text = %q, want %q", req.Message.Text, tt.want)
			}
			if req.Message.DequeueCount != 2 {
				t.Errorf("DequeueCount = %d", req.Message.DequeueCount)
			}
		})
	}
}

func TestDecodeQueueErrors(t *testing.T) {
	tests := []struct{ name, body, binding string }{
		{"not json", `not json`, ""},
		{"array", `[]`, ""},
		{"trailing data", `{"Data":{"q":"\"x\""}} {}`, ""},
		{"missing binding", `{"Data":{"q":"\"x\""}}`, "job"},
		{"no data", `{"Data":{},"Metadata":{}}`, ""},
		{"two bindings", `{"Data":{"a":"\"x\"","b":"\"y\""}}`, ""},
		{"bad dequeue count", `{"Data":{"q":"\"x\""},"Metadata":{"DequeueCount":"many"}}`, ""},
		{"negative dequeue count", `{"Data":{"q":"\"x\""},"Metadata":{"DequeueCount":"-1"}}`, ""},
		{"bad time", `{"Data":{"q":"\"x\""},"Metadata":{"InsertionTime":"yesterday"}}`, ""},
		{"bad sys", `{"Data":{"q":"\"x\""},"Metadata":{"sys":"x"}}`, ""},
		{"bad value", `{"Data":{"q":nope}}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeQueue([]byte(tt.body), tt.binding)
			if !errors.Is(err, ErrPayload) {
				t.Fatalf("err = %v, want ErrPayload", err)
			}
		})
	}
}

func TestDecodeTimer(t *testing.T) {
	tests := []struct {
		file, binding string
		want          TimerRequest
	}{
		{"timer_assembled.json", "myTimer", TimerRequest{
			Timer: TimerInfo{Schedule: Schedule{AdjustForDST: true}, ScheduleStatus: &ScheduleStatus{
				Last:        mustTime(t, "2022-03-28T20:40:00.0105419Z"),
				Next:        mustTime(t, "2022-03-28T20:45:00Z"),
				LastUpdated: mustTime(t, "2022-03-28T20:40:00.0105419Z"),
			}},
			Sys: Sys{MethodName: "myTimerFunction", UtcNow: mustTime(t, "2022-03-28T20:45:00.0123456Z"), RandGuid: "4e773554-f6b7-4ea2-b07d-4c5fd5aba741"},
		}},
		{"timer_no_monitor.json", "", TimerRequest{
			Timer: TimerInfo{Schedule: Schedule{AdjustForDST: true}, IsPastDue: true},
			Sys:   Sys{MethodName: "ByokMonitor", UtcNow: mustTime(t, "2025-02-18T03:15:00.0000001Z"), RandGuid: "0b8c4a44-5f0e-4d38-9a3c-3f6a4c0a7f11"},
		}},
		// Before the first run: .NET minimum dates, one without offset.
		{"timer_first_run.json", "timer", TimerRequest{
			Timer: TimerInfo{Schedule: Schedule{AdjustForDST: true}, ScheduleStatus: &ScheduleStatus{
				Next: mustTime(t, "2025-02-19T02:00:00Z"),
			}},
			Sys: Sys{MethodName: "BackupScheduler", UtcNow: mustTime(t, "2025-02-18T03:06:20.7562691Z"), RandGuid: "7f0e3b52-7b7d-4a8e-9e55-5d1b2c3d4e5f"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := DecodeTimer(readTestdata(t, tt.file), tt.binding)
			if err != nil {
				t.Fatal(err)
			}
			if got.Timer.IsPastDue != tt.want.Timer.IsPastDue || got.Timer.Schedule != tt.want.Timer.Schedule {
				t.Errorf("Timer = %+v, want %+v", got.Timer, tt.want.Timer)
			}
			switch gs, ws := got.Timer.ScheduleStatus, tt.want.Timer.ScheduleStatus; {
			case (gs == nil) != (ws == nil):
				t.Errorf("ScheduleStatus = %v, want %v", gs, ws)
			case gs != nil:
				if !gs.Last.Equal(ws.Last) || !gs.Next.Equal(ws.Next) || !gs.LastUpdated.Equal(ws.LastUpdated) {
					t.Errorf("ScheduleStatus = %+v, want %+v", *gs, *ws)
				}
			}
			if got.Sys.MethodName != tt.want.Sys.MethodName || got.Sys.RandGuid != tt.want.Sys.RandGuid || !got.Sys.UtcNow.Equal(tt.want.Sys.UtcNow) {
				t.Errorf("Sys = %+v, want %+v", got.Sys, tt.want.Sys)
			}
		})
	}
}

func TestDecodeTimerErrors(t *testing.T) {
	for name, body := range map[string]string{
		"not object":        `"x"`,
		"timer is number":   `{"Data":{"t":5}}`,
		"bad last":          `{"Data":{"t":{"ScheduleStatus":{"Last":"soon"}}}}`,
		"time not a string": `{"Data":{"t":{"ScheduleStatus":{"Next":12}}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeTimer([]byte(body), ""); !errors.Is(err, ErrPayload) {
				t.Fatalf("err = %v, want ErrPayload", err)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct{ in, want string }{
		{"2025-02-18T03:06:19+00:00", "2025-02-18T03:06:19Z"},
		{"2022-03-28T15:40:00.0105419-05:00", "2022-03-28T20:40:00.0105419Z"},
		{"2025-02-18T03:06:20.7562691Z", "2025-02-18T03:06:20.7562691Z"},
		{"2025-02-18T03:06:20.7562691", "2025-02-18T03:06:20.7562691Z"},
		{"2025-02-18T03:06:20", "2025-02-18T03:06:20Z"},
		{"2025-02-18 03:06:20+01:00", "2025-02-18T02:06:20Z"},
		{`"2025-02-18T03:06:19+00:00"`, "2025-02-18T03:06:19Z"},
		{"0001-01-01T00:00:00+00:00", ""},
		{"0001-01-01T00:00:00", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTime(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				if !got.IsZero() {
					t.Fatalf("got %v, want zero", got)
				}
				return
			}
			if want := mustTime(t, tt.want); !got.Equal(want) || got.Location() != time.UTC {
				t.Fatalf("got %v, want %v UTC", got, want)
			}
		})
	}
	for _, bad := range []string{"yesterday", "2025-13-01T00:00:00Z", "2025-02-18", "1739847979"} {
		if _, err := ParseTime(bad); err == nil {
			t.Errorf("ParseTime(%q) succeeded", bad)
		}
	}
}

func TestWrite(t *testing.T) {
	tests := []struct {
		name   string
		status int
		resp   Response
		want   string
	}{
		{"empty", 200, Response{}, `{"Outputs":{},"Logs":[],"ReturnValue":null}`},
		{"failure", 500, Response{Logs: []string{"failed"}}, `{"Outputs":{},"Logs":["failed"],"ReturnValue":null}`},
		{"outputs", 200, Response{Outputs: map[string]any{"out": []string{"m1"}}, ReturnValue: "r"},
			`{"Outputs":{"out":["m1"]},"Logs":[],"ReturnValue":"r"}`},
		{"unencodable", 200, Response{Outputs: map[string]any{"x": func() {}}},
			`{"Outputs":{},"Logs":["invoke: response could not be encoded"],"ReturnValue":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			err := Write(rec, tt.status, tt.resp)
			wantStatus := tt.status
			if tt.name == "unencodable" {
				wantStatus = http.StatusInternalServerError
				if err == nil {
					t.Error("Write returned no error for an unencodable output")
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if rec.Code != wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, wantStatus)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if got := strings.TrimSpace(rec.Body.String()); got != tt.want {
				t.Errorf("body = %s, want %s", got, tt.want)
			}
		})
	}
}
