// Package ptr reads the optional (pointer) fields of Azure SDK responses
// and fills unset option fields with their defaults.
// Making a pointer needs no helper: Go 1.26's new(expr) does it.
package ptr

import "time"

// Value is *p, or T's zero value when p is nil.
func Value[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// Default sets *p to def when *p is unset (zero or negative): how the
// services fill their Options.
func Default[T int | int64 | time.Duration](p *T, def T) {
	if *p <= 0 {
		*p = def
	}
}
