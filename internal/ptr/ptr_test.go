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

func TestDefault(t *testing.T) {
	n, d := 0, -time.Second
	set := int64(3)
	Default(&n, 4)
	Default(&d, time.Minute)
	Default(&set, 9)
	if n != 4 || d != time.Minute || set != 3 {
		t.Errorf("Default: %d %v %d, want 4 1m0s 3", n, d, set)
	}
}
