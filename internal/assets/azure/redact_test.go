package azure

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestParseErrorsNameNoTenantData: table parsing errors name items by hash,
// never by their id, property name or value (they end up in logs).
func TestParseErrorsNameNoTenantData(t *testing.T) {
	const m = "Zq9LeakMark"
	entity := func(js string) error {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(js), &raw); err != nil {
			t.Fatal(err)
		}
		_, _, err := parseEntity(raw)
		return err
	}
	for name, err := range map[string]error{
		"bad Int64 value":    entity(`{"PartitionKey":"t","RowKey":"k` + m + `","n` + m + `":"x` + m + `","n` + m + `@odata.type":"Edm.Int64"}`),
		"bad DateTime value": entity(`{"PartitionKey":"t","RowKey":"k` + m + `","d` + m + `":"` + m + `","d` + m + `@odata.type":"Edm.DateTime"}`),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if strings.Contains(strings.ToLower(err.Error()), strings.ToLower(m)) {
			t.Errorf("%s: error names tenant data: %v", name, err)
		}
	}
}
