package invoke

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Layouts the host is seen or documented to use. Fractional seconds of any
// length (.NET writes 7 digits) are accepted by time.Parse after the seconds
// field even when the layout has none. A value without an offset is UTC:
// the host runs in UTC.
var timeLayouts = []string{
	time.RFC3339,
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05",
}

// ParseTime parses a host timestamp leniently: with or without offset, any
// number of fractional digits, optionally JSON-quoted a second time. The
// .NET minimum date (year 1) and "" are the zero time. Results are UTC.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if inner, ok := innerString(s); ok {
		s = strings.TrimSpace(inner)
	}
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range timeLayouts {
		t, err := time.Parse(layout, s)
		if err != nil {
			continue
		}
		if t.Year() <= 1 {
			return time.Time{}, nil
		}
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("unrecognized timestamp %q", s)
}

// lenientTime decodes a JSON string (or null) with [ParseTime].
type lenientTime struct{ t time.Time }

func (l *lenientTime) UnmarshalJSON(b []byte) error {
	if isNull(b) {
		l.t = time.Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("timestamp must be a string: %w", err)
	}
	t, err := ParseTime(s)
	if err != nil {
		return err
	}
	l.t = t
	return nil
}
