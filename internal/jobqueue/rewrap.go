package jobqueue

import (
	"encoding/json"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/tenants"
)

// RewrapQueue is the default `rewrap-jobs` queue name (API.md §1);
// QUEUE_REWRAP_JOBS overrides it.
const RewrapQueue = "rewrap-jobs"

// RewrapJob is a `rewrap-jobs` message: {"tenant", "rewrapId"}; the
// request itself is the Rewraps row.
type RewrapJob struct {
	Tenant   string
	RewrapID string
}

// Validate checks every field as the decoder does.
func (j RewrapJob) Validate() error {
	switch {
	case !tenants.ValidID(j.Tenant):
		return invalid("tenant is not a valid tenant id")
	case !catalog.ValidID(j.RewrapID):
		return invalid("rewrapId is not a valid id")
	}
	return nil
}

// MarshalJSON writes API.md's shape.
func (j RewrapJob) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"tenant": j.Tenant, "rewrapId": j.RewrapID})
}

// DecodeRewrapJob strictly decodes the text of a `rewrap-jobs` message.
func DecodeRewrapJob(data []byte) (RewrapJob, error) {
	f, err := fields(data, "tenant", "rewrapId")
	if err != nil {
		return RewrapJob{}, err
	}
	j := RewrapJob{Tenant: f["tenant"], RewrapID: f["rewrapId"]}
	if err := j.Validate(); err != nil {
		return RewrapJob{}, err
	}
	return j, nil
}
