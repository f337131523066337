// Package ptr reads the optional (pointer) fields of Azure SDK responses.
// Making a pointer needs no helper: Go 1.26's new(expr) does it.
package ptr

// Value is *p, or T's zero value when p is nil.
func Value[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}
