package main

import (
	"net/http/httptest"
	"os"
	"strconv"
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

func TestStatFieldsOfSelf(t *testing.T) {
	f := statFields(os.Getpid())
	if len(f) < 13 || f[1] != itoa(os.Getppid()) {
		t.Fatalf("stat fields %v: want the parent pid %d at index 1", f, os.Getppid())
	}
	// Burn CPU until /proc shows some (bounded: a broken parser never
	// does).
	busy := 0
	for i := 0; cpuTime([]int{os.Getpid()}) <= 0; i++ {
		if i == 2000 {
			t.Fatal("cpuTime of a busy process stays 0")
		}
		for j := range 1_000_000 {
			busy += j
		}
	}
	_ = busy
}

func itoa(i int) string { return strconv.Itoa(i) }
