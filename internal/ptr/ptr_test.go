package ptr

import (
	"testing"
	"time"
)

func TestValue(t *testing.T) {
	s, n, at := "x", int64(7), time.Unix(5, 0)
	if Value(&s) != "x" || Value(&n) != 7 || !Value(&at).Equal(at) {
		t.Error("Value of a set pointer is not what it points to")
	}
	if Value[string](nil) != "" || Value[int64](nil) != 0 || !Value[time.Time](nil).IsZero() {
		t.Error("Value of nil is not the zero value")
	}
}
