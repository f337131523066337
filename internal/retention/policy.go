// Package retention is the retention policy of API.md §6: restic's
// `forget --keep-last/daily/weekly/monthly/yearly` rules over a tenant's
// completed backups, bucketed by completedAt in UTC. It is pure (no I/O):
// the backup service streams the catalog, hands Apply the few fields it
// needs and acts on the answer.
package retention

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Policy is a tenant's retention policy; a zero count turns its rule off
// and an all-zero policy keeps everything.
type Policy struct {
	KeepLast    int `json:"keepLast"`
	KeepDaily   int `json:"keepDaily"`
	KeepWeekly  int `json:"keepWeekly"`
	KeepMonthly int `json:"keepMonthly"`
	KeepYearly  int `json:"keepYearly"`
}

// DefaultSetting is RETENTION_DEFAULT's default.
const DefaultSetting = "keepLast=7,keepDaily=30,keepWeekly=12,keepMonthly=12"

// KeepAll reports whether no rule is set (contract: all zero keeps everything).
func (p Policy) KeepAll() bool { return p == Policy{} }

// MaxCount bounds each count (it is stored as a 32-bit integer, and no
// tenant keeps a million backups).
const MaxCount = 1_000_000

// Validate refuses negative and absurd counts.
func (p Policy) Validate() error {
	for _, f := range p.fields() {
		if *f.v < 0 || *f.v > MaxCount {
			return fmt.Errorf("%s must be from 0 to %d, got %d", f.name, MaxCount, *f.v)
		}
	}
	return nil
}

type field struct {
	name string
	v    *int
}

func (p *Policy) fields() []field {
	return []field{{"keepLast", &p.KeepLast}, {"keepDaily", &p.KeepDaily}, {"keepWeekly", &p.KeepWeekly},
		{"keepMonthly", &p.KeepMonthly}, {"keepYearly", &p.KeepYearly}}
}

// String is the setting form, "keepLast=7,keepDaily=30,…" (zero rules left out).
func (p Policy) String() string {
	var parts []string
	for _, f := range p.fields() {
		if *f.v != 0 {
			parts = append(parts, f.name+"="+strconv.Itoa(*f.v))
		}
	}
	return strings.Join(parts, ",")
}

// Parse reads the setting form of RETENTION_DEFAULT: comma-separated
// name=count pairs, names as in the JSON body, each at most once; absent
// names are 0 and the empty string is the all-zero policy.
func Parse(s string) (Policy, error) {
	var p Policy
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		name = strings.TrimSpace(name)
		var target *int
		for _, f := range p.fields() {
			if f.name == name {
				target = f.v
			}
		}
		if !ok || target == nil {
			return Policy{}, fmt.Errorf("%q is not name=count with name one of keepLast, keepDaily, keepWeekly, keepMonthly, keepYearly", part)
		}
		if seen[name] {
			return Policy{}, fmt.Errorf("%s is given twice", name)
		}
		seen[name] = true
		n, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || n < 0 || n > MaxCount {
			return Policy{}, fmt.Errorf("%s must be a whole number from 0 to %d, got %q", name, MaxCount, strings.TrimSpace(val))
		}
		*target = n
	}
	return p, nil
}

// Item is what the policy needs of one completed backup.
type Item struct {
	ID          string
	CompletedAt time.Time
}

// Apply returns the ids of the items no rule keeps, newest first. Items
// are ordered newest first by CompletedAt, equal times by id descending
// (ids sort by time, so the later-requested backup counts as newer); the
// order of items is changed in place. Like restic's ApplyPolicy, each rule
// keeps the newest item of each of its buckets (the item itself for
// keepLast; UTC day, ISO week, month and year for the others), counted
// from the newest bucket, until its count is used up; and a rule that
// still has counts left when it reaches the oldest item keeps that one
// too, which maximises the history kept. A backup is kept if any rule
// keeps it.
func Apply(p Policy, items []Item) (remove []string) {
	if p.KeepAll() {
		return nil
	}
	slices.SortStableFunc(items, func(a, b Item) int {
		if c := b.CompletedAt.Compare(a.CompletedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	type rule struct {
		count  int
		bucket func(t time.Time, nr int) int
		last   int
	}
	rules := []rule{
		{p.KeepLast, func(_ time.Time, nr int) int { return nr }, -1},
		{p.KeepDaily, func(t time.Time, _ int) int { return t.Year()*10000 + int(t.Month())*100 + t.Day() }, -1},
		{p.KeepWeekly, func(t time.Time, _ int) int { y, w := t.ISOWeek(); return y*100 + w }, -1},
		{p.KeepMonthly, func(t time.Time, _ int) int { return t.Year()*100 + int(t.Month()) }, -1},
		{p.KeepYearly, func(t time.Time, _ int) int { return t.Year() }, -1},
	}
	for nr, it := range items {
		t := it.CompletedAt.UTC()
		keep := false
		for i := range rules {
			r := &rules[i]
			if r.count <= 0 {
				continue
			}
			if v := r.bucket(t, nr); v != r.last || nr == len(items)-1 {
				keep = true
				r.last = v
				r.count--
			}
		}
		if !keep {
			remove = append(remove, it.ID)
		}
	}
	return remove
}

// Store holds each tenant's policy (table RetentionPolicies, PartitionKey =
// tenant). Implementations: retention/aztable and retention/mem.
type Store interface {
	// GetPolicy returns the tenant's stored policy; ok is false when it
	// has none (the default applies).
	GetPolicy(ctx context.Context, tenant string) (p Policy, ok bool, err error)
	// PutPolicy stores the tenant's policy, replacing any other.
	PutPolicy(ctx context.Context, tenant string, p Policy) error
}
