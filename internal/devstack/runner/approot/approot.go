// Package approot reads an Azure Functions app root the way the Functions
// host discovers it: host.json beside one folder per function, each with a
// function.json. The local runner and the package step share it, so what we
// package is exactly what the runner (and the real host) will find.
package approot

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Host-side naming rules (docs/research/functions-custom-handler.md §2.1).
var (
	functionNameRE = regexp.MustCompile(`(?i)^[a-z][a-z0-9_\-]{0,127}$`)
	bindingNameRE  = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9]{0,127}|\$return)$`)
)

// ErrInvalid marks an app root the host would reject or misread.
var ErrInvalid = errors.New("invalid function app")

// App is a discovered app root.
type App struct {
	// Root is the absolute path of the folder holding host.json.
	Root string
	Host Host
	// Functions are sorted by name.
	Functions []Function
}

// Function is one top-level folder with a function.json.
type Function struct {
	Name     string
	Bindings []Binding
}

// Binding is one entry of function.json "bindings". Only the properties the
// runner uses are decoded; JSON names match case-insensitively, like the host.
type Binding struct {
	Name       string   `json:"name"`
	Type       string   `json:"type"`
	Direction  string   `json:"direction"`
	DataType   string   `json:"dataType,omitempty"`
	Schedule   string   `json:"schedule,omitempty"`
	RunOnStart bool     `json:"runOnStartup,omitempty"`
	UseMonitor *bool    `json:"useMonitor,omitempty"`
	QueueName  string   `json:"queueName,omitempty"`
	Connection string   `json:"connection,omitempty"`
	AuthLevel  string   `json:"authLevel,omitempty"`
	Route      string   `json:"route,omitempty"`
	Methods    []string `json:"methods,omitempty"`
}

// Binding types the runner knows.
const (
	TypeTimer     = "timerTrigger"
	TypeQueue     = "queueTrigger"
	TypeHTTP      = "httpTrigger"
	TypeHTTPOut   = "http"
	DirectionIn   = "in"
	DirectionOut  = "out"
	HostJSON      = "host.json"
	FunctionJSON  = "function.json"
	defaultPrefix = "api"
)

// Trigger returns the function's trigger binding (the one input binding
// whose type ends in "Trigger").
func (f Function) Trigger() (Binding, bool) {
	for _, b := range f.Bindings {
		if strings.EqualFold(b.Direction, DirectionIn) && strings.HasSuffix(strings.ToLower(b.Type), "trigger") {
			return b, true
		}
	}
	return Binding{}, false
}

// IsHTTPOnly reports whether the host forwards this function's requests
// verbatim when enableForwardingHttpRequest is on: exactly one input binding,
// an httpTrigger, and exactly one output binding, of type http (§5).
func (f Function) IsHTTPOnly() bool {
	var in, out int
	var httpIn, httpOut bool
	for _, b := range f.Bindings {
		switch strings.ToLower(b.Direction) {
		case DirectionIn:
			in++
			httpIn = strings.EqualFold(b.Type, TypeHTTP)
		case DirectionOut:
			out++
			httpOut = strings.EqualFold(b.Type, TypeHTTPOut)
		}
	}
	return in == 1 && out == 1 && httpIn && httpOut
}

// Load reads host.json and every immediate sub-folder of root that holds a
// function.json. Nested folders are ignored, as the host ignores them.
func Load(root string) (*App, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("failed to resolve app root %q: %w", root, err)
	}
	host, err := ReadHost(filepath.Join(abs, HostJSON))
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return nil, fmt.Errorf("failed to list app root: %w", err)
	}
	app := &App{Root: abs, Host: *host}
	seen := map[string]string{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		p := filepath.Join(abs, e.Name(), FunctionJSON)
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			continue
		}
		fn, err := ReadFunction(e.Name(), p)
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[strings.ToLower(fn.Name)]; dup {
			return nil, fmt.Errorf("%w: function folders %q and %q differ only in case", ErrInvalid, prev, fn.Name)
		}
		seen[strings.ToLower(fn.Name)] = fn.Name
		app.Functions = append(app.Functions, *fn)
	}
	sort.Slice(app.Functions, func(i, j int) bool { return app.Functions[i].Name < app.Functions[j].Name })
	return app, nil
}

// ReadFunction reads one function.json and checks the host's naming rules.
func ReadFunction(name, path string) (*Function, error) {
	if !functionNameRE.MatchString(name) || strings.EqualFold(name, "host") {
		return nil, fmt.Errorf("%w: %q is not a valid function name (letters, digits, _ and -, starting with a letter, not \"host\")", ErrInvalid, name)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", path, err)
	}
	var doc struct {
		Bindings []Binding `json:"bindings"`
		Disabled bool      `json:"disabled"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%w: %s is not valid JSON: %v", ErrInvalid, path, err)
	}
	if len(doc.Bindings) == 0 {
		return nil, fmt.Errorf("%w: %s has no bindings", ErrInvalid, path)
	}
	names := map[string]bool{}
	triggers := 0
	for _, bd := range doc.Bindings {
		if !bindingNameRE.MatchString(bd.Name) {
			return nil, fmt.Errorf("%w: function %s: binding name %q must be letters and digits (no _ or -), starting with a letter", ErrInvalid, name, bd.Name)
		}
		if names[strings.ToLower(bd.Name)] {
			return nil, fmt.Errorf("%w: function %s: binding name %q is used twice", ErrInvalid, name, bd.Name)
		}
		names[strings.ToLower(bd.Name)] = true
		if strings.EqualFold(bd.Direction, DirectionIn) && strings.HasSuffix(strings.ToLower(bd.Type), "trigger") {
			triggers++
		}
	}
	if triggers != 1 {
		return nil, fmt.Errorf("%w: function %s must have exactly one trigger binding, has %d", ErrInvalid, name, triggers)
	}
	return &Function{Name: name, Bindings: doc.Bindings}, nil
}
