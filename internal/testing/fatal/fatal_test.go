package fatal

import (
	"errors"
	"fmt"
	"testing"
)

// recorder is a testing.TB whose Fatal records instead of stopping.
type recorder struct {
	testing.TB
	fatal []string
}

func (r *recorder) Helper()           {}
func (r *recorder) Fatal(args ...any) { r.fatal = append(r.fatal, fmt.Sprint(args...)) }

func TestIfErr(t *testing.T) {
	r := &recorder{TB: t}
	IfErr(r, nil)
	if len(r.fatal) != 0 {
		t.Fatalf("nil error failed the test: %v", r.fatal)
	}
	IfErr(r, errors.New("boom"))
	if len(r.fatal) != 1 || r.fatal[0] != "boom" {
		t.Fatalf("fatal = %v, want [boom]", r.fatal)
	}
}
