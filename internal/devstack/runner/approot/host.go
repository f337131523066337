package approot

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Host is the part of host.json the runner and the package step use.
type Host struct {
	Version string `json:"version"`
	// FunctionTimeout is host.json "functionTimeout"; 0 means unbounded.
	FunctionTimeout Duration      `json:"functionTimeout"`
	CustomHandler   CustomHandler `json:"customHandler"`
	Extensions      struct {
		Queues QueueOptions `json:"queues"`
		HTTP   struct {
			RoutePrefix *string `json:"routePrefix"`
		} `json:"http"`
	} `json:"extensions"`
}

// CustomHandler is host.json "customHandler".
type CustomHandler struct {
	Description struct {
		DefaultExecutablePath string   `json:"defaultExecutablePath"`
		Arguments             []string `json:"arguments"`
		WorkingDirectory      string   `json:"workingDirectory"`
	} `json:"description"`
	EnableForwardingHTTPRequest bool     `json:"enableForwardingHttpRequest"`
	EnableProxyingHTTPRequest   bool     `json:"enableProxyingHttpRequest"`
	InitializationTimeout       Duration `json:"initializationTimeout"`
	Port                        int      `json:"port"`
}

// QueueOptions is host.json "extensions.queues".
type QueueOptions struct {
	MessageEncoding    string   `json:"messageEncoding"`
	MaxDequeueCount    int      `json:"maxDequeueCount"`
	BatchSize          int      `json:"batchSize"`
	NewBatchThreshold  *int     `json:"newBatchThreshold"`
	VisibilityTimeout  Duration `json:"visibilityTimeout"`
	MaxPollingInterval Duration `json:"maxPollingInterval"`
}

// Queue defaults documented for the Storage Queues extension v5.
const (
	DefaultMaxDequeueCount = 5
	DefaultBatchSize       = 16
	MaxBatchSize           = 32
)

// WithDefaults fills unset queue options with the extension's defaults.
func (q QueueOptions) WithDefaults() QueueOptions {
	if q.MessageEncoding == "" {
		q.MessageEncoding = "base64"
	}
	if q.MaxDequeueCount <= 0 {
		q.MaxDequeueCount = DefaultMaxDequeueCount
	}
	if q.BatchSize <= 0 {
		q.BatchSize = DefaultBatchSize
	}
	if q.BatchSize > MaxBatchSize {
		q.BatchSize = MaxBatchSize
	}
	return q
}

// RoutePrefix is extensions.http.routePrefix, "api" when unset.
func (h Host) RoutePrefix() string {
	if h.Extensions.HTTP.RoutePrefix == nil {
		return defaultPrefix
	}
	return strings.Trim(*h.Extensions.HTTP.RoutePrefix, "/")
}

// ReadHost reads and checks host.json.
func ReadHost(path string) (*Host, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s (an app root needs host.json): %w", path, err)
	}
	var h Host
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, path, err)
	}
	if h.Version != "2.0" {
		return nil, fmt.Errorf("%w: %s: \"version\" must be \"2.0\", is %q", ErrInvalid, path, h.Version)
	}
	if strings.TrimSpace(h.CustomHandler.Description.DefaultExecutablePath) == "" {
		return nil, fmt.Errorf("%w: %s: customHandler.description.defaultExecutablePath is missing", ErrInvalid, path)
	}
	switch strings.ToLower(h.Extensions.Queues.MessageEncoding) {
	case "", "base64", "none":
	default:
		return nil, fmt.Errorf("%w: %s: extensions.queues.messageEncoding must be \"base64\" or \"none\", is %q", ErrInvalid, path, h.Extensions.Queues.MessageEncoding)
	}
	return &h, nil
}

// Executable resolves defaultExecutablePath the way the host does: against
// the app root if the file exists there, else as a name on PATH (§1.1).
func (a *App) Executable() string {
	p := a.Host.CustomHandler.Description.DefaultExecutablePath
	if filepath.IsAbs(p) {
		return p
	}
	if full := filepath.Join(a.Root, p); fileExists(full) {
		return full
	}
	return p
}

// WorkingDir is customHandler.description.workingDirectory relative to the
// root; the root itself when unset.
func (a *App) WorkingDir() string {
	wd := a.Host.CustomHandler.Description.WorkingDirectory
	if wd == "" {
		return a.Root
	}
	if filepath.IsAbs(wd) {
		return wd
	}
	return filepath.Join(a.Root, wd)
}

// CheckExecutable fails unless defaultExecutablePath is a regular file inside
// the root with an execute bit: a deployable root must carry its handler.
func (a *App) CheckExecutable() error {
	p := filepath.Join(a.Root, a.Host.CustomHandler.Description.DefaultExecutablePath)
	st, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("%w: the handler %s is missing: %v", ErrInvalid, p, err)
	}
	if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%w: the handler %s is not an executable file (mode %v)", ErrInvalid, p, st.Mode())
	}
	return nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// Duration decodes host.json time spans: "hh:mm:ss", "d.hh:mm:ss",
// fractional seconds, or a plain number of milliseconds. "-1" means unbounded (0).
type Duration time.Duration

// UnmarshalJSON implements [json.Unmarshaler].
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var ms float64
		if err2 := json.Unmarshal(b, &ms); err2 != nil {
			return fmt.Errorf("time span must be a string like \"00:05:00\": %w", err)
		}
		*d = Duration(time.Duration(ms * float64(time.Millisecond)))
		return nil
	}
	v, err := ParseTimeSpan(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ParseTimeSpan parses a .NET TimeSpan string ("[d.]hh:mm:ss[.fff]").
// "-1" and "" are 0, meaning unbounded.
func ParseTimeSpan(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "-1" || s == "-00:00:01" {
		return 0, nil
	}
	days := 0
	hms := s
	if i := strings.IndexByte(s, '.'); i >= 0 && i < strings.IndexByte(s, ':') {
		n, err := strconv.Atoi(s[:i])
		if err != nil {
			return 0, fmt.Errorf("invalid time span %q", s)
		}
		days, hms = n, s[i+1:]
	}
	parts := strings.Split(hms, ":")
	if len(parts) != 3 {
		return 0, fmt.Errorf("invalid time span %q: want hh:mm:ss", s)
	}
	h, err1 := strconv.Atoi(parts[0])
	m, err2 := strconv.Atoi(parts[1])
	sec, err3 := strconv.ParseFloat(parts[2], 64)
	if err1 != nil || err2 != nil || err3 != nil || h < 0 || m < 0 || m > 59 || sec < 0 || sec >= 60 {
		return 0, fmt.Errorf("invalid time span %q: want hh:mm:ss", s)
	}
	return time.Duration(days)*24*time.Hour + time.Duration(h)*time.Hour + time.Duration(m)*time.Minute +
		time.Duration(sec*float64(time.Second)), nil
}
