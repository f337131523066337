package errcode

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestStatusTable(t *testing.T) {
	cases := map[Code]int{
		InvalidRequest: 400, Unauthorized: 401, Forbidden: 403, NotFound: 404, BackupNotFound: 404,
		Conflict: 409, KeyValidationFailed: 422, KeyDisabled: 422, Throttled: 429, Internal: 500,
		ServiceUnavailable: 503, KeyOwnershipNotProven: 422, BackupDeleted: 409, Code("Unknown"): 500,
	}
	for c, want := range cases {
		if got := Status(c); got != want {
			t.Errorf("Status(%s) = %d, want %d", c, got, want)
		}
	}
}

func TestPublicHidesCause(t *testing.T) {
	cause := errors.New("RESPONSE 403: secret azure body")
	err := fmt.Errorf("step: %w", Wrap(cause, KeyDisabled, "The key is disabled."))
	code, msg := Public(err)
	if code != KeyDisabled || msg != "The key is disabled." {
		t.Fatalf("Public = %s %q", code, msg)
	}
	if !errors.Is(err, cause) {
		t.Fatal("cause not reachable through Unwrap")
	}
	code, msg = Public(cause)
	if code != Internal || msg == cause.Error() {
		t.Fatalf("unknown error leaked: %s %q", code, msg)
	}
	if Status(CodeOf(err)) != http.StatusUnprocessableEntity {
		t.Fatal("status")
	}
}
