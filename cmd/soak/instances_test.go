package main

import (
	"testing"
	"time"
)

// TestOverlapping is the overlap check of the many-instances run: jobs of
// one tenant that touch end to start are fine; one starting inside
// another, inside a long one that covers several, or after one that never
// ended are not; rows that never started are ignored.
func TestOverlapping(t *testing.T) {
	at := func(s int) time.Time { return time.Date(2026, 1, 1, 0, 0, s, 0, time.UTC) }
	cases := []struct {
		name  string
		spans []span
		want  int
	}{
		{"none", nil, 0},
		{"back to back", []span{{"a", at(0), at(5)}, {"b", at(5), at(9)}, {"c", at(9), at(10)}}, 0},
		{"unsorted, apart", []span{{"b", at(6), at(9)}, {"a", at(0), at(5)}}, 0},
		{"one inside another", []span{{"a", at(0), at(5)}, {"b", at(4), at(9)}}, 1},
		{"a long one covering two", []span{{"a", at(0), at(20)}, {"b", at(2), at(3)}, {"c", at(5), at(6)}}, 2},
		{"after one still running", []span{{"a", at(0), time.Time{}}, {"b", at(30), at(31)}}, 1},
		{"never started", []span{{"a", at(0), at(5)}, {"q", time.Time{}, time.Time{}}}, 0},
	}
	for _, c := range cases {
		if got := overlapping(c.spans); len(got) != c.want {
			t.Errorf("%s: %d overlaps %v, want %d", c.name, len(got), got, c.want)
		}
	}
}
