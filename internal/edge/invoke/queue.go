package invoke

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// QueueMessage is one Storage Queue message as the host hands it over.
type QueueMessage struct {
	// Text is the message text after the queue's base64 decoding and the
	// host's JSON encoding are undone: exactly what the producer enqueued.
	Text            []byte
	ID              string
	PopReceipt      string
	DequeueCount    int // 1 on the first attempt
	InsertionTime   time.Time
	ExpirationTime  time.Time
	NextVisibleTime time.Time
}

// QueueRequest is one decoded queue invocation.
type QueueRequest struct {
	Message QueueMessage
	Sys     Sys
}

// DecodeQueue decodes a queue invocation body. binding names the trigger's
// binding; "" takes the only Data entry.
func DecodeQueue(body []byte, binding string) (*QueueRequest, error) {
	p, raw, sys, err := parsePayload(body, binding)
	if err != nil {
		return nil, err
	}
	text, err := unquote(raw)
	if err != nil {
		return nil, errorf("queue message: %v", err)
	}
	m := QueueMessage{Text: []byte(text)}
	if m.ID, err = metaString(p.Metadata, "Id"); err != nil {
		return nil, err
	}
	if m.PopReceipt, err = metaString(p.Metadata, "PopReceipt"); err != nil {
		return nil, err
	}
	if m.DequeueCount, err = metaInt(p.Metadata, "DequeueCount"); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		key string
		dst *time.Time
	}{
		{"InsertionTime", &m.InsertionTime},
		{"ExpirationTime", &m.ExpirationTime},
		{"NextVisibleTime", &m.NextVisibleTime},
	} {
		if *f.dst, err = metaTime(p.Metadata, f.key); err != nil {
			return nil, err
		}
	}
	return &QueueRequest{Message: m, Sys: sys}, nil
}

// metaString reads a string metadata value, quoted once or twice.
func metaString(md map[string]json.RawMessage, key string) (string, error) {
	raw, ok := md[key]
	if !ok {
		return "", nil
	}
	s, err := unquote(raw)
	if err != nil {
		return "", errorf("Metadata.%s: %v", key, err)
	}
	return s, nil
}

// metaInt reads a number sent as "3" (the host), 3 (the docs) or "\"3\"".
func metaInt(md map[string]json.RawMessage, key string) (int, error) {
	s, err := metaString(md, key)
	if err != nil || s == "" {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 {
		return 0, errorf("Metadata.%s: want a non-negative integer, got %q", key, s)
	}
	return n, nil
}

func metaTime(md map[string]json.RawMessage, key string) (time.Time, error) {
	s, err := metaString(md, key)
	if err != nil {
		return time.Time{}, err
	}
	t, err := ParseTime(s)
	if err != nil {
		return time.Time{}, errorf("Metadata.%s: %v", key, err)
	}
	return t, nil
}

func trimSpace(b []byte) string { return string(bytes.TrimSpace(b)) }
