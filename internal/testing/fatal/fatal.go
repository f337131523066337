// Package fatal is the one "stop the test on an error" helper the test
// packages share, instead of a must or check written in each of them.
package fatal

import "testing"

// IfErr fails and stops the test (or benchmark) when err is not nil.
func IfErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
