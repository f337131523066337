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

// TestStartRetriesATakenPort: a port picked as free can be taken by another
// process before Azurite binds it (CI saw EADDRINUSE when test packages ran
// in parallel). Start is handed such a port first and must still come up,
// on other ports.
func TestStartRetriesATakenPort(t *testing.T) {
	taken := holdPort(t)
	calls := 0
	inst, err := Start(t.Context(), Options{pickPort: func() (int, error) {
		calls++
		if calls == 2 { // the queue port of the first attempt
			return taken, nil
		}
		return FreePort()
	}})
	if err != nil {
		t.Fatalf("Start with a taken port: %v", err)
	}
	defer inst.Stop()
	if inst.QueuePort == taken {
		t.Fatalf("queue port %d is the taken one", taken)
	}
	if calls < 6 {
		t.Fatalf("ports picked %d times, want a second attempt (≥ 6)", calls)
	}
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(inst.QueuePort))
	if err != nil {
		t.Fatalf("queue port %d: %v", inst.QueuePort, err)
	}
	c.Close()
}

// TestStartReportsATakenFixedPort: a fixed port is the caller's choice;
// Start reports at once that it is taken, even when it picked the other
// two itself: new ports for those would meet the same taken one.
func TestStartReportsATakenFixedPort(t *testing.T) {
	taken := holdPort(t)
	calls := 0
	inst, err := Start(t.Context(), Options{QueuePort: taken, pickPort: func() (int, error) {
		calls++
		return FreePort()
	}})
	if err == nil {
		inst.Stop()
		t.Fatal("Start on a taken fixed port succeeded")
	}
	if !strings.Contains(err.Error(), "EADDRINUSE") || !strings.Contains(err.Error(), strconv.Itoa(taken)) {
		t.Fatalf("error %v does not name the taken port %d", err, taken)
	}
	if calls != 2 {
		t.Fatalf("ports picked %d times, want 2: one attempt", calls)
	}
}

// holdPort listens on a free loopback port until the test ends.
func holdPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().(*net.TCPAddr).Port
}
