// Package invoke decodes the invocation payloads the Azure Functions host
// sends a custom handler for timer and queue triggers, and encodes the
// response the host expects.
//
// The host serializes binding values with Newtonsoft: objects stay objects,
// but strings and numbers are JSON-encoded a second time, so a queue message
// "hi" arrives as "\"hi\"", a DequeueCount 3 as "3" and a message id with
// its quotes. Decoders here follow that captured behaviour (see
// docs docs/research/functions-custom-handler.md §3.2–3.4) and tolerate the
// single-encoded values that the documentation shows.
package invoke

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// ErrPayload is wrapped by every decoding failure: the body is not an
// invocation payload this package understands.
var ErrPayload = errors.New("invoke: malformed invocation payload")

// Payload is the raw body of a non-HTTP invocation:
// {"Data": {<binding>: value}, "Metadata": {<key>: value}}.
type Payload struct {
	Data     map[string]json.RawMessage `json:"Data"`
	Metadata map[string]json.RawMessage `json:"Metadata"`
}

// Sys is the host's `sys` metadata object.
type Sys struct {
	MethodName string
	UtcNow     time.Time
	RandGuid   string
}

type wireSys struct {
	MethodName string
	UtcNow     lenientTime
	RandGuid   string
}

func errorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrPayload}, args...)...)
}

// parsePayload decodes body and picks the trigger value: Data[binding], or
// the only Data entry when binding is "" (timer and queue functions here
// have no input bindings besides the trigger).
func parsePayload(body []byte, binding string) (Payload, json.RawMessage, Sys, error) {
	var p Payload
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&p); err != nil {
		return p, nil, Sys{}, errorf("body is not a JSON object: %v", err)
	}
	if dec.More() {
		return p, nil, Sys{}, errorf("trailing data after the JSON object")
	}
	var raw json.RawMessage
	switch {
	case binding != "":
		v, ok := p.Data[binding]
		if !ok {
			return p, nil, Sys{}, errorf("Data has no binding %q (has %s)", binding, keys(p.Data))
		}
		raw = v
	case len(p.Data) == 1:
		for _, v := range p.Data {
			raw = v
		}
	default:
		return p, nil, Sys{}, errorf("Data must hold exactly one trigger binding, has %s", keys(p.Data))
	}
	var sys wireSys
	if s, ok := p.Metadata["sys"]; ok && !isNull(s) {
		if err := json.Unmarshal(s, &sys); err != nil {
			return p, nil, Sys{}, errorf("Metadata.sys: %v", err)
		}
	}
	return p, raw, Sys{MethodName: sys.MethodName, UtcNow: sys.UtcNow.t, RandGuid: sys.RandGuid}, nil
}

func keys(m map[string]json.RawMessage) string {
	if len(m) == 0 {
		return "none"
	}
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, fmt.Sprintf("%q", k))
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

func isNull(raw json.RawMessage) bool {
	return len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

// unquote returns the string inside a JSON string value, and undoes the
// host's second encoding when the inner text is itself a JSON string.
// A value that is not a JSON string at all (a number, an object) is
// returned as its raw text.
func unquote(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if isNull(raw) {
		return "", nil
	}
	if raw[0] != '"' {
		if raw[0] == '{' || raw[0] == '[' || raw[0] == 't' || raw[0] == 'f' || raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9') {
			if !json.Valid(raw) {
				return "", fmt.Errorf("invalid JSON value")
			}
			return string(raw), nil
		}
		return "", fmt.Errorf("invalid JSON value")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", err
	}
	if inner, ok := innerString(s); ok {
		return inner, nil
	}
	return s, nil
}

// innerString reports whether s is itself a complete JSON string literal
// and returns its content.
func innerString(s string) (string, bool) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", false
	}
	var inner string
	if err := json.Unmarshal([]byte(s), &inner); err != nil {
		return "", false
	}
	return inner, true
}
