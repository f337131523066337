package envelope

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestDataKeyRedacted(t *testing.T) {
	dk := testKey(t)
	secret := hex.EncodeToString(dk.Bytes())
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "key", dk)
	for _, s := range []string{fmt.Sprint(dk), fmt.Sprintf("%v %+v %#v %x %s %q", dk, dk, dk, dk, dk, dk), logged.String()} {
		if strings.Contains(s, secret) || strings.Contains(s, fmt.Sprint(dk.Bytes())) || !strings.Contains(s, "REDACTED") {
			t.Errorf("key not redacted: %s", s)
		}
	}
}

func TestDataKeyLifecycle(t *testing.T) {
	a, _ := NewDataKey()
	b, _ := NewDataKey()
	if bytes.Equal(a.Bytes(), b.Bytes()) || len(a.Bytes()) != DataKeySize {
		t.Fatal("NewDataKey keys are equal or the wrong size")
	}
	raw := bytes.Clone(a.Bytes())
	c, err := DataKeyFromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	clear(raw) // the caller zeroes its copy; c must keep its own
	if !bytes.Equal(c.Bytes(), a.Bytes()) {
		t.Fatal("DataKeyFromBytes did not copy")
	}
	alias := c.Bytes()
	c.Destroy()
	if !bytes.Equal(alias, make([]byte, DataKeySize)) || c.Bytes() != nil {
		t.Fatal("Destroy did not zero the key")
	}
	if _, err := NewWriter(c, "acme", "b", testKeyRef(), newMemStore(), nil); err == nil {
		t.Fatal("NewWriter accepted a destroyed key")
	}
	for _, n := range []int{0, 16, 31, 33} {
		if _, err := DataKeyFromBytes(make([]byte, n)); err == nil {
			t.Errorf("DataKeyFromBytes accepted %d bytes", n)
		}
	}
}

// TestDataKeyDestroyAfterNewWriter: writers and readers keep only derived
// keys, so the data key can be destroyed right after use.
func TestDataKeyDestroyAfterNewWriter(t *testing.T) {
	dk := testKey(t)
	raw := bytes.Clone(dk.Bytes())
	st := newMemStore()
	w, err := NewWriter(dk, "acme", "b", testKeyRef(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	dk.Destroy()
	sw, _ := w.Create(t.Context(), 0)
	sw.Write([]byte("data"))
	sw.Close()
	man, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	dk2, _ := DataKeyFromBytes(raw)
	m, _ := ParseManifest(man)
	r, err := Open(m, dk2, "acme", "b")
	if err != nil {
		t.Fatal(err)
	}
	dk2.Destroy()
	if err := r.Verify(t.Context(), st, 1); err != nil {
		t.Fatal(err)
	}
}
