package jobqueue_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/twinit/byok-backup/internal/jobqueue"
)

func TestDecodeRewrapJob(t *testing.T) {
	j, err := jobqueue.DecodeRewrapJob([]byte(`{"tenant":"acme","rewrapId":"` + bid + `"}`))
	if err != nil || j != (jobqueue.RewrapJob{Tenant: "acme", RewrapID: bid}) {
		t.Fatalf("got %+v, %v", j, err)
	}
	for _, bad := range []string{`{"tenant":"acme"}`, `{"tenant":"acme","rewrapId":"` + bid + `","x":"1"}`,
		`{"tenant":"Acme","rewrapId":"` + bid + `"}`, `{"tenant":"acme","rewrapId":"a/b"}`, `{"tenant":"acme","RewrapId":"` + bid + `"}`} {
		if _, err := jobqueue.DecodeRewrapJob([]byte(bad)); !errors.Is(err, jobqueue.ErrInvalidMessage) {
			t.Errorf("%s: %v, want ErrInvalidMessage", bad, err)
		}
	}
}

func FuzzDecodeRewrapJob(f *testing.F) {
	f.Add([]byte(`{"tenant":"acme","rewrapId":"` + bid + `"}`))
	f.Add([]byte(`{"tenant":"acme","rewrapId":"` + bid + `","x":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := jobqueue.DecodeRewrapJob(data)
		if err != nil {
			if !errors.Is(err, jobqueue.ErrInvalidMessage) {
				t.Fatalf("error %v is not ErrInvalidMessage", err)
			}
			return
		}
		b, _ := json.Marshal(j)
		if again, err := jobqueue.DecodeRewrapJob(b); err != nil || again != j {
			t.Fatalf("re-encoded %s decodes to %+v, %v; want %+v", b, again, err, j)
		}
	})
}
