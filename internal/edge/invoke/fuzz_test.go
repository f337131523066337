package invoke

import (
	"os"
	"path/filepath"
	"testing"
	"time"
	"unicode/utf8"
)

func addSeeds(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed payloads in testdata (err %v)", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"Data":{"q":"\"\\\"x\\\"\""},"Metadata":{"DequeueCount":7,"Id":"\"\\\"\""}}`))
}

// FuzzDecodeQueue checks the decoder never panics on untrusted bytes and
// that a successful decode yields sane values.
func FuzzDecodeQueue(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeQueue(body, "")
		if err != nil {
			return
		}
		if req.Message.DequeueCount < 0 {
			t.Fatalf("negative DequeueCount %d", req.Message.DequeueCount)
		}
		for _, tm := range []time.Time{req.Message.InsertionTime, req.Message.ExpirationTime, req.Message.NextVisibleTime, req.Sys.UtcNow} {
			if !tm.IsZero() && tm.Location() != time.UTC {
				t.Fatalf("time %v is not UTC", tm)
			}
		}
		if !utf8.ValidString(req.Message.ID) {
			// encoding/json replaces invalid UTF-8, so IDs are always valid.
			t.Fatalf("ID is not valid UTF-8: %q", req.Message.ID)
		}
	})
}

// FuzzDecodeTimer checks the timer decoder never panics.
func FuzzDecodeTimer(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeTimer(body, "")
		if err != nil {
			return
		}
		if s := req.Timer.ScheduleStatus; s != nil && !s.Last.IsZero() && s.Last.Location().String() != "UTC" {
			t.Fatalf("Last not in UTC: %v", s.Last)
		}
	})
}

// FuzzParseTime checks ParseTime never panics and returns UTC or zero.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2025-02-18T03:06:19+00:00", "0001-01-01T00:00:00", "2025-02-18T03:06:20.7562691", `"x"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := ParseTime(s)
		if err == nil && !tm.IsZero() && tm.Location().String() != "UTC" {
			t.Fatalf("ParseTime(%q) = %v, not UTC", s, tm)
		}
	})
}
