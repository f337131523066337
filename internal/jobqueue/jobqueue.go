// Package jobqueue encodes job messages for the job queues (by default
// `backup-jobs` and `restore-jobs`) and strictly decodes them for the
// workers (API.md §1). The queue client is jobqueue/azqueue.
//
// Messages are JSON, base64-encoded on the queue: host.json declares
// `extensions.queues.messageEncoding: base64` (the host's default), and the
// host sends a message that is not valid base64 straight to the poison queue.
package jobqueue

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

// MaxDelay is Azure Queue Storage's longest initial visibility delay.
const MaxDelay = 7 * 24 * time.Hour

// validator is implemented by the job messages; Encode refuses an invalid
// one rather than poison the queue.
type validator interface{ Validate() error }

// Encode returns the queue text of msg for queue (named in errors): msg's
// JSON, base64-encoded. If msg has a Validate method it must pass, and the
// encoded text must fit [MaxMessageSize]; otherwise the error wraps
// [ErrInvalidMessage]. The queue adapter (jobqueue/azqueue) sends the text.
func Encode(queue string, msg any) (string, error) {
	if v, ok := msg.(validator); ok {
		if err := v.Validate(); err != nil {
			return "", fmt.Errorf("failed to enqueue to %s: %w", queue, err)
		}
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return "", fmt.Errorf("failed to encode message for %s: %w", queue, err)
	}
	if len(body) > MaxMessageSize*3/4 {
		return "", fmt.Errorf("failed to enqueue to %s: %w", queue, invalid("message of %d bytes is too large once base64-encoded", len(body)))
	}
	return base64.StdEncoding.EncodeToString(body), nil
}
