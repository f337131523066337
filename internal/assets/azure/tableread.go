package azure

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/azerr"
	"github.com/twinit/byok-backup/internal/errcode"
)

// Records yields the tenant's records in RowKey order, one listing page in
// memory at a time. It stops at the first error, which it yields.
//
// It reads each page's raw response body (captured with
// runtime.WithCaptureResponse) instead of aztables' re-marshalled
// entities: the SDK decodes into float64 and marshals again, which turns
// the service's Double `3.0` into `3`, indistinguishable from an Int32.
func (s *Store) Records(ctx context.Context, tenant string) iter.Seq2[assets.Record, error] {
	return func(yield func(assets.Record, error) bool) {
		if err := assets.CheckTenant(tenant); err != nil {
			yield(assets.Record{}, err)
			return
		}
		pager := s.table.NewListEntitiesPager(&aztables.ListEntitiesOptions{
			Filter: to.Ptr(partitionFilter(tenant)),
			Top:    to.Ptr(s.opts.RecordPageSize),
			Format: to.Ptr(aztables.MetadataFormatFull),
		})
		for pager.More() {
			var raw *http.Response
			if _, err := pager.NextPage(policy.WithCaptureResponse(ctx, &raw)); err != nil {
				if isTableMissing(err) {
					yield(assets.Record{}, missingTable(err))
					return
				}
				yield(assets.Record{}, errcode.Wrap(fmt.Errorf("failed to list records of tenant %q: %w", tenant, azerr.Redact(err)),
					errcode.ServiceUnavailable, "The tenant's records could not be read from table storage. Try again later."))
				return
			}
			if raw == nil {
				yield(assets.Record{}, errors.New("assets: internal error: no raw response captured for a table page"))
				return
			}
			body, err := runtime.Payload(raw)
			if err != nil {
				yield(assets.Record{}, fmt.Errorf("failed to read a table page of tenant %q: %w", tenant, azerr.Redact(err)))
				return
			}
			recs, err := parsePage(body, tenant)
			if err != nil {
				yield(assets.Record{}, fmt.Errorf("failed to parse a table page of tenant %q: %w", tenant, err))
				return
			}
			for _, r := range recs {
				if !yield(r, nil) {
					return
				}
			}
		}
	}
}

// partitionFilter selects one tenant's partition exactly (eq, not a
// prefix range, so tenant "a" never sees "ab"). Quotes are doubled per
// OData even though tenant ids can't contain them.
func partitionFilter(tenant string) string {
	return "PartitionKey eq '" + strings.ReplaceAll(tenant, "'", "''") + "'"
}

// parsePage decodes a query response body, checking every entity belongs
// to tenant: a filter bug must not leak another tenant's data into a backup.
func parsePage(body []byte, tenant string) ([]assets.Record, error) {
	var page struct {
		Value []map[string]json.RawMessage `json:"value"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&page); err != nil {
		return nil, err
	}
	out := make([]assets.Record, 0, len(page.Value))
	for i, raw := range page.Value {
		r, pk, err := parseEntity(raw)
		if err != nil {
			return nil, fmt.Errorf("entity #%d of the page: %w", i+1, err)
		}
		if pk != tenant {
			return nil, fmt.Errorf("listing for tenant %q returned an entity of partition %q", tenant, pk)
		}
		out = append(out, r)
	}
	return out, nil
}

// parseEntity turns one full-metadata entity into a Record and its
// PartitionKey. Types come from `<name>@odata.type` annotations; without
// one, the JSON token decides: string → String, bool → Boolean, a number
// with '.', 'e' or 'E' → Double (the service writes doubles as `3.0`), an
// integer → Int32. Int64, DateTime, Guid and Binary are always annotated.
func parseEntity(raw map[string]json.RawMessage) (assets.Record, string, error) {
	var r assets.Record
	var pk string
	if err := json.Unmarshal(raw["PartitionKey"], &pk); err != nil {
		return r, "", fmt.Errorf("entity without a PartitionKey: %w", err)
	}
	if err := json.Unmarshal(raw["RowKey"], &r.RowKey); err != nil {
		return r, "", fmt.Errorf("entity without a RowKey: %w", err)
	}
	for name, v := range raw {
		if assets.IsReserved(name) || strings.HasPrefix(name, "odata.") || strings.Contains(name, "@") {
			continue
		}
		var typ string
		if a, ok := raw[name+"@odata.type"]; ok {
			if err := json.Unmarshal(a, &typ); err != nil {
				return r, "", fmt.Errorf("property %s: bad type annotation: %w", assets.Tag(name), err)
			}
		}
		p, skip, err := parseValue(name, typ, v)
		if err != nil {
			return r, "", fmt.Errorf("property %s: %w", assets.Tag(name), err)
		}
		if !skip {
			r.Properties = append(r.Properties, p)
		}
	}
	r.SortProperties()
	return r, pk, r.Validate()
}

func parseValue(name, typ string, v json.RawMessage) (p assets.Property, skip bool, err error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return p, true, nil // the service stores no nulls; nothing to keep
	}
	p.Name = name
	if typ == "" {
		switch c := v[0]; {
		case c == '"':
			typ = "Edm.String"
		case c == 't' || c == 'f':
			typ = "Edm.Boolean"
		case bytes.ContainsAny(v, ".eE"):
			typ = "Edm.Double"
		default:
			typ = "Edm.Int32"
		}
	}
	var s string
	isString := v[0] == '"'
	if isString {
		if err := json.Unmarshal(v, &s); err != nil {
			return p, false, err
		}
	}
	switch typ {
	case "Edm.String":
		p.Type, p.Value = assets.TypeString, s
		if !isString {
			return p, false, errors.New("Edm.String value is not a JSON string")
		}
	case "Edm.Boolean":
		var b bool
		err = json.Unmarshal(v, &b)
		p.Type, p.Value = assets.TypeBoolean, b
	case "Edm.Int32":
		var n int64
		n, err = strconv.ParseInt(string(v), 10, 32)
		p.Type, p.Value = assets.TypeInt32, int32(n)
	case "Edm.Int64":
		var n int64
		n, err = strconv.ParseInt(s, 10, 64)
		p.Type, p.Value = assets.TypeInt64, n
	case "Edm.Double":
		var f float64
		f, err = parseDouble(v, s, isString)
		p.Type, p.Value = assets.TypeDouble, f
	case "Edm.DateTime":
		var t time.Time
		t, err = time.Parse(time.RFC3339Nano, s)
		p.Type, p.Value = assets.TypeDateTime, t.UTC()
	case "Edm.Guid":
		p.Type, p.Value = assets.TypeGUID, s
	case "Edm.Binary":
		var b []byte
		b, err = base64.StdEncoding.DecodeString(s)
		if b == nil {
			b = []byte{}
		}
		p.Type, p.Value = assets.TypeBinary, b
	default:
		return p, false, fmt.Errorf("unsupported type %q", typ)
	}
	if err != nil {
		// strconv's and time's errors quote the value: tenant data.
		return p, false, fmt.Errorf("not a valid %s value", typ)
	}
	return p, false, nil
}

// parseDouble reads a JSON number or the service's "NaN", "Infinity",
// "-Infinity" strings.
func parseDouble(v json.RawMessage, s string, isString bool) (float64, error) {
	if !isString {
		return strconv.ParseFloat(string(v), 64)
	}
	switch s {
	case "NaN":
		return math.NaN(), nil
	case "Infinity":
		return math.Inf(1), nil
	case "-Infinity":
		return math.Inf(-1), nil
	}
	return strconv.ParseFloat(s, 64)
}
