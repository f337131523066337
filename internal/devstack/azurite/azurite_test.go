package azurite

import (
	"net"
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
