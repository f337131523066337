package main

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRequestCounterKinds(t *testing.T) {
	c := &requestCounter{}
	c.Reset()
	for _, u := range []string{
		"/devstoreaccount1/assets/t/twins/a.bin?comp=block&blockid=AAAA",
		"/devstoreaccount1/assets/t/twins/b.bin?comp=block&blockid=AAAA",
		"/devstoreaccount1/assets/t/twins/a.bin?comp=blocklist",
	} {
		c.add("blob", httptest.NewRequest("PUT", u, nil))
	}
	c.add("table", httptest.NewRequest("GET", "/devstoreaccount1/Restores(PartitionKey='t',RowKey='r')", nil))
	got := c.Snapshot()
	for k, want := range map[string]string{
		"blob PUT assets block":     "2 @",
		"blob PUT assets blocklist": "1 @",
		"table GET Restores -":      "1 @",
	} {
		if !strings.HasPrefix(got[k], want) {
			t.Errorf("%q = %q, want prefix %q (all: %v)", k, got[k], want, got)
		}
	}
	c.Reset()
	if len(c.Snapshot()) != 0 {
		t.Fatal("Reset kept counts")
	}
}
