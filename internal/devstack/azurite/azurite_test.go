package azurite

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func TestStartListensOnAllServices(t *testing.T) {
	inst := TestStart(t)
	for _, p := range []int{inst.BlobPort, inst.QueuePort, inst.TablePort} {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d: %v", p, err)
		}
		c.Close()
	}
	cs := inst.ConnectionString()
	for _, want := range []string{inst.BlobURL(), inst.QueueURL(), inst.TableURL(), "AccountName=devstoreaccount1"} {
		if !strings.Contains(cs, want) {
			t.Errorf("connection string %q lacks %q", cs, want)
		}
	}
}

// TestCPUTime: Azurite's start-up and requests show in its CPU time,
// read from /proc for its process group (a broken parser reads 0).
func TestCPUTime(t *testing.T) {
	inst := TestStart(t)
	before := inst.CPUTime()
	if before <= 0 {
		t.Fatalf("CPU time after start-up %v, want > 0", before)
	}
	for range 200 {
		resp, err := http.Get(inst.BlobURL() + "devstoreaccount1?comp=list")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if after := inst.CPUTime(); after <= before {
		t.Fatalf("CPU time %v after 200 requests, was %v", after, before)
	}
}
