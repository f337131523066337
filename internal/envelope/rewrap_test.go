package envelope

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/twinit/byok-backup/internal/keywrap"
)

func vectorNamed(t *testing.T, name string) vectorFile {
	t.Helper()
	for _, v := range loadVectors(t) {
		if v.name == name {
			return v
		}
	}
	t.Fatalf("no vector %s", name)
	return vectorFile{}
}

func vectorKey(t *testing.T, v vectorFile) *DataKey {
	t.Helper()
	raw, err := hex.DecodeString(v.header["data key"])
	if err != nil {
		t.Fatal(err)
	}
	dk, err := DataKeyFromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	return dk
}

// Rewrap produces exactly the re-wrapped vector (written by the generator
// from FORMAT.md §10, not by Rewrap), so the reference writer and the
// specification agree byte for byte.
func TestRewrapMatchesVector(t *testing.T) {
	orig, want := vectorNamed(t, "ok_two_streams"), vectorNamed(t, "ok_rewrapped")
	m, err := ParseManifest(orig.manifest)
	if err != nil {
		t.Fatal(err)
	}
	wk, _ := hex.DecodeString(want.header["wrapped key"])
	ref := KeyRef{Source: keywrap.Source(want.header["key source"]), KeyID: want.header["key id"], Algorithm: keywrap.Algorithm, WrappedKey: wk}
	got, err := Rewrap(m, vectorKey(t, orig), orig.header["tenant"], orig.header["backup id"], ref)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.manifest) {
		t.Fatalf("Rewrap output differs from the ok_rewrapped vector")
	}
	rm, err := ParseManifest(got)
	if err != nil {
		t.Fatal(err)
	}
	if rm.Key.KeyID != ref.KeyID || rm.Key.Source != keywrap.Platform {
		t.Fatalf("re-wrapped key = %s (%s)", rm.Key.KeyID, rm.Key.Source)
	}
}

// Rewrap refuses a manifest it cannot authenticate (wrong data key, other
// backup) and a key reference the format does not allow: it never lends
// its MAC to a manifest it did not verify.
func TestRewrapRefuses(t *testing.T) {
	orig := vectorNamed(t, "ok_two_streams")
	m, err := ParseManifest(orig.manifest)
	if err != nil {
		t.Fatal(err)
	}
	dk := vectorKey(t, orig)
	good := m.Key
	other, _ := NewDataKey()
	if _, err := Rewrap(m, other, orig.header["tenant"], orig.header["backup id"], good); !errors.Is(err, ErrIntegrity) {
		t.Errorf("wrong data key: %v, want ErrIntegrity", err)
	}
	if _, err := Rewrap(m, dk, orig.header["tenant"], "another-backup", good); !errors.Is(err, ErrIntegrity) {
		t.Errorf("other backup: %v, want ErrIntegrity", err)
	}
	bad := good
	bad.Algorithm = "RSA1_5"
	if _, err := Rewrap(m, dk, orig.header["tenant"], orig.header["backup id"], bad); err == nil {
		t.Error("RSA1_5 key reference accepted")
	}
	bad = good
	bad.KeyID = "https://contoso-kv.vault.azure.net/keys/twinit-backup"
	if _, err := Rewrap(m, dk, orig.header["tenant"], orig.header["backup id"], bad); err == nil {
		t.Error("versionless key id accepted")
	}
}
