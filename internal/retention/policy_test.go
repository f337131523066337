package retention

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// items makes one item per time, id = its index as text ("0", "1", …).
func items(times ...string) []Item {
	var out []Item
	for i, s := range times {
		out = append(out, Item{ID: fmt.Sprint(i), CompletedAt: at(s)})
	}
	return out
}

func TestApply(t *testing.T) {
	// restic's documented example (doc/060_forget.rst): a backup every
	// Sunday for 12 weeks; --keep-daily 4 keeps the last four Sundays.
	sundays := items("2019-09-01T11:00:00Z", "2019-09-08T11:00:00Z", "2019-09-15T11:00:00Z", "2019-09-22T11:00:00Z",
		"2019-09-29T11:00:00Z", "2019-10-06T11:00:00Z", "2019-10-13T11:00:00Z", "2019-10-20T11:00:00Z",
		"2019-10-27T11:00:00Z", "2019-11-03T11:00:00Z", "2019-11-10T11:00:00Z", "2019-11-17T11:00:00Z")
	tests := []struct {
		name   string
		p      Policy
		items  []Item
		remove []string // newest first
	}{
		{"restic doc: 12 Sundays, keep-daily 4", Policy{KeepDaily: 4}, sundays, []string{"7", "6", "5", "4", "3", "2", "1", "0"}},
		{"restic doc: 12 Sundays, keep-weekly 4 keeps the same four", Policy{KeepWeekly: 4}, sundays, []string{"7", "6", "5", "4", "3", "2", "1", "0"}},
		// Sundays in months 9, 10, 11: the newest of each is 09-29, 10-27, 11-17.
		{"12 Sundays, keep-monthly 3", Policy{KeepMonthly: 3}, sundays, []string{"10", "9", "7", "6", "5", "3", "2", "1", "0"}},
		{"all zero keeps everything", Policy{}, sundays, nil},
		{"keep-last 3 of 5", Policy{KeepLast: 3},
			items("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z", "2026-01-05T00:00:00Z"),
			[]string{"1", "0"}},
		{"keep-last larger than the list keeps all", Policy{KeepLast: 10},
			items("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"), nil},
		{"input order does not matter", Policy{KeepLast: 2},
			items("2026-01-03T00:00:00Z", "2026-01-01T00:00:00Z", "2026-01-05T00:00:00Z", "2026-01-02T00:00:00Z"),
			[]string{"3", "1"}},
		// Two a day on three days; counts used up before the oldest.
		{"keep-daily 2 keeps the newest of the two newest days", Policy{KeepDaily: 2},
			items("2026-02-01T10:00:00Z", "2026-02-01T22:00:00Z", "2026-02-02T09:00:00Z", "2026-02-02T23:00:00Z", "2026-02-03T08:00:00Z"),
			[]string{"2", "1", "0"}},
		// Counts left at the oldest: restic keeps the oldest too.
		{"keep-daily 5 over 3 days also keeps the oldest", Policy{KeepDaily: 5},
			items("2026-02-01T10:00:00Z", "2026-02-01T22:00:00Z", "2026-02-02T09:00:00Z", "2026-02-02T23:00:00Z", "2026-02-03T08:00:00Z", "2026-02-03T09:00:00Z"),
			[]string{"4", "2"}},
		{"keep-monthly 12 over three in one month keeps newest and oldest", Policy{KeepMonthly: 12},
			items("2026-05-01T00:00:00Z", "2026-05-15T00:00:00Z", "2026-05-31T23:59:59Z"), []string{"1"}},
		// UTC buckets: 23:30 and 00:30 at +01:00 are both March 1st in UTC.
		{"time zone: local days apart, one UTC day", Policy{KeepDaily: 1, KeepLast: 0},
			items("2026-03-01T23:30:00+01:00", "2026-03-02T00:30:00+01:00", "2026-03-03T12:00:00Z"),
			[]string{"1", "0"}},
		{"time zone: local same day, UTC days apart", Policy{KeepDaily: 2},
			items("2026-03-01T10:00:00Z", "2026-03-01T20:00:00-02:00", "2026-03-01T23:30:00-02:00"),
			[]string{"0"}},
		// Month boundary at midnight UTC: Jan 31 23:59:59 and Feb 1 00:00 are different months.
		{"month boundary", Policy{KeepMonthly: 2},
			items("2026-01-31T23:59:59Z", "2026-02-01T00:00:00Z", "2026-02-28T12:00:00Z", "2026-03-01T00:00:00Z"),
			[]string{"1", "0"}},
		{"month boundary, a count left for January", Policy{KeepMonthly: 3},
			items("2026-01-31T23:59:59Z", "2026-02-01T00:00:00Z", "2026-02-28T12:00:00Z", "2026-03-01T00:00:00Z"),
			[]string{"1"}},
		{"month boundary in another zone is the UTC month", Policy{KeepMonthly: 2},
			items("2026-01-15T00:00:00Z", "2026-02-01T00:30:00+01:00", "2026-02-10T00:00:00Z"),
			[]string{"0"}}, // 02-01T00:30+01:00 is January 31st UTC: the newest of January
		// ISO weeks cross the year: Mon 2025-12-29 and Sun 2026-01-04 are week 2026-W01.
		{"ISO week across the new year", Policy{KeepWeekly: 2},
			items("2025-12-29T06:00:00Z", "2026-01-04T06:00:00Z", "2026-01-05T06:00:00Z"),
			[]string{"0"}},
		{"yearly", Policy{KeepYearly: 2},
			items("2024-06-01T00:00:00Z", "2024-12-31T23:59:59Z", "2025-01-01T00:00:00Z", "2025-07-01T00:00:00Z"),
			[]string{"2", "0"}},
		// Equal timestamps: the later id counts as newer.
		{"equal timestamps, keep-last 1", Policy{KeepLast: 1},
			[]Item{{"a", at("2026-04-01T00:00:00Z")}, {"b", at("2026-04-01T00:00:00Z")}, {"c", at("2026-04-01T00:00:00Z")}},
			[]string{"b", "a"}},
		{"equal timestamps, keep-daily 1", Policy{KeepDaily: 1},
			[]Item{{"b", at("2026-04-01T00:00:00Z")}, {"a", at("2026-04-01T00:00:00Z")}},
			[]string{"a"}},
		{"rules are ORed", Policy{KeepLast: 1, KeepMonthly: 2},
			items("2026-01-10T00:00:00Z", "2026-02-10T00:00:00Z", "2026-02-11T00:00:00Z", "2026-02-12T00:00:00Z"),
			[]string{"2", "1"}},
		{"empty list", Policy{KeepLast: 1}, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Apply(tc.p, slices.Clone(tc.items))
			if !slices.Equal(got, tc.remove) {
				t.Errorf("remove = %v, want %v", got, tc.remove)
			}
		})
	}
}

// TestApplyResticCentury: restic's documented example of one backup a day
// for 100 years with --keep-daily 7 --keep-weekly 5 --keep-monthly 12
// --keep-yearly 75 ("7 daily, about 4 weekly, 11 or 12 monthly, 74 or 75
// yearly"). Worked out for this calendar (newest 2025-12-31, a Wednesday
// of ISO week 2026-W01): dailies Dec 25–31; weeklies Dec 31 (kept), 28
// (a daily), 21, 14, 7 (3 more); monthlies Dec (kept) and 11 more; yearlies
// 2025 (kept) and 1951–2024 (74 more): 7+3+11+74 = 95.
func TestApplyResticCentury(t *testing.T) {
	var list []Item
	start := at("1926-01-01T12:00:00Z")
	for d := start; d.Year() < 2026; d = d.AddDate(0, 0, 1) {
		list = append(list, Item{ID: d.Format("2006-01-02"), CompletedAt: d})
	}
	remove := Apply(Policy{KeepDaily: 7, KeepWeekly: 5, KeepMonthly: 12, KeepYearly: 75}, slices.Clone(list))
	kept := len(list) - len(remove)
	if kept != 95 {
		t.Fatalf("kept %d, want 95", kept)
	}
	for _, id := range []string{"2025-12-21", "2025-12-14", "2025-12-07", "2025-01-31"} {
		if slices.Contains(remove, id) {
			t.Errorf("%s removed", id)
		}
	}
	// The newest is always kept; last day of each kept year is kept.
	if slices.Contains(remove, "2025-12-31") || !slices.Contains(remove, "2025-12-01") {
		t.Errorf("wrong picks: 2025-12-31 removed=%v, 2025-12-01 removed=%v", slices.Contains(remove, "2025-12-31"), slices.Contains(remove, "2025-12-01"))
	}
	for y := 1951; y <= 2024; y++ {
		if slices.Contains(remove, fmt.Sprintf("%d-12-31", y)) {
			t.Errorf("last day of %d removed", y)
		}
	}
}

func TestParse(t *testing.T) {
	p, err := Parse(DefaultSetting)
	if err != nil || p != (Policy{KeepLast: 7, KeepDaily: 30, KeepWeekly: 12, KeepMonthly: 12}) {
		t.Fatalf("Parse(default) = %+v, %v", p, err)
	}
	if p.String() != DefaultSetting {
		t.Errorf("String() = %q", p.String())
	}
	if p, err := Parse(" keepYearly = 3 "); err != nil || p != (Policy{KeepYearly: 3}) {
		t.Errorf("Parse(keepYearly) = %+v, %v", p, err)
	}
	if p, err := Parse(""); err != nil || !p.KeepAll() {
		t.Errorf("Parse(\"\") = %+v, %v", p, err)
	}
	for _, bad := range []string{"keepLast=-1", "keepLast=1.5", "keepHourly=2", "keepLast", "keepLast=1,keepLast=2", "keepLast=x"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
	if err := (Policy{KeepWeekly: -1}).Validate(); err == nil {
		t.Error("Validate accepted a negative count")
	}
}

// FuzzParse: Parse never panics, accepts only valid policies, and what it
// accepts survives String and Parse again.
func FuzzParse(f *testing.F) {
	for _, s := range []string{DefaultSetting, "", "keepYearly=3", "keepLast=-1", "keepLast=1,keepLast=2", " keepDaily = 4 ,", "keepWeekly=1e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("Parse(%q) accepted an invalid policy: %v", s, err)
		}
		if q, err := Parse(p.String()); err != nil || q != p {
			t.Fatalf("round trip of %q: %+v, %v", s, q, err)
		}
	})
}
