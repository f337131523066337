package assets

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Type is the EDM type of a record property. The numeric values are part of
// the backup format (see doc.go): never renumber them.
type Type uint8

// The EDM types Table Storage stores.
const (
	TypeString   Type = 1
	TypeInt32    Type = 2
	TypeInt64    Type = 3
	TypeDouble   Type = 4
	TypeBoolean  Type = 5
	TypeDateTime Type = 6
	TypeGUID     Type = 7
	TypeBinary   Type = 8
)

var typeNames = map[Type]string{
	TypeString: "Edm.String", TypeInt32: "Edm.Int32", TypeInt64: "Edm.Int64", TypeDouble: "Edm.Double",
	TypeBoolean: "Edm.Boolean", TypeDateTime: "Edm.DateTime", TypeGUID: "Edm.Guid", TypeBinary: "Edm.Binary",
}

// String is the OData name of the type, e.g. "Edm.Int64".
func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Property is one user property of a record. Value holds, by Type:
// string (String, and Guid in its 8-4-4-4-12 hex form as stored), int32,
// int64, float64 (NaN and ±Inf included), bool, time.Time (DateTime, UTC),
// []byte (Binary, never nil once decoded).
type Property struct {
	Name  string
	Type  Type
	Value any
}

// Record is one entity of a tenant's Assets table without its system
// properties: the PartitionKey is the tenant (rewritten at restore) and
// Timestamp and ETag belong to the service.
type Record struct {
	RowKey string
	// Properties are sorted by Name (byte order) with unique names, so the
	// same entity always encodes to the same bytes.
	Properties []Property
}

// Limits of what a record may hold, enforced by the encoder and the decoder.
// They are above Table Storage's own (1 KiB keys, 255-character names,
// 252 user properties, 64 KiB values, 1 MiB entities) so every stored
// entity fits, and low enough that a hostile backup can't make the decoder
// allocate much.
const (
	MaxKeyBytes        = 4096
	MaxPropertyName    = 1024
	MaxProperties      = 255
	MaxRecordFrameSize = 4 << 20
)

// Get returns the property called name.
func (r Record) Get(name string) (Property, bool) {
	i, ok := slices.BinarySearchFunc(r.Properties, name, func(p Property, n string) int { return strings.Compare(p.Name, n) })
	if !ok {
		return Property{}, false
	}
	return r.Properties[i], true
}

// SortProperties puts the properties in the canonical (name) order.
func (r *Record) SortProperties() {
	slices.SortFunc(r.Properties, func(a, b Property) int { return strings.Compare(a.Name, b.Name) })
}

// Validate reports the first reason r can't be stored or encoded.
func (r Record) Validate() error {
	if err := checkKey(r.RowKey); err != nil {
		return fmt.Errorf("row key: %w", err)
	}
	if len(r.Properties) > MaxProperties {
		return fmt.Errorf("%d properties, more than %d", len(r.Properties), MaxProperties)
	}
	for i, p := range r.Properties {
		if err := checkPropertyName(p.Name); err != nil {
			return fmt.Errorf("property #%d: %w", i+1, err)
		}
		if i > 0 && r.Properties[i-1].Name >= p.Name {
			return fmt.Errorf("property #%d is out of order or repeated", i+1)
		}
		if err := checkValue(p); err != nil {
			return fmt.Errorf("property #%d: %w", i+1, err)
		}
	}
	return nil
}

func checkKey(k string) error {
	if len(k) > MaxKeyBytes {
		return fmt.Errorf("%d bytes, more than %d", len(k), MaxKeyBytes)
	}
	if !utf8.ValidString(k) {
		return fmt.Errorf("not valid UTF-8")
	}
	return nil
}

// reservedNames are the system properties: never part of a record.
var reservedNames = map[string]bool{"PartitionKey": true, "RowKey": true, "Timestamp": true}

// IsReserved reports whether n is a system property name (PartitionKey,
// RowKey, Timestamp), which is never a record property.
func IsReserved(n string) bool { return reservedNames[n] }

func checkPropertyName(n string) error {
	switch {
	case n == "" || len(n) > MaxPropertyName:
		return fmt.Errorf("property name of %d bytes (want 1 to %d)", len(n), MaxPropertyName)
	case !utf8.ValidString(n):
		return fmt.Errorf("property name is not valid UTF-8")
	case reservedNames[n]:
		return errors.New("property name is a system property")
	case strings.ContainsRune(n, '@') || strings.HasPrefix(n, "odata."):
		// '@' and "odata." would be read back as OData annotations.
		return errors.New("property name looks like an OData annotation")
	}
	return nil
}

func checkValue(p Property) error {
	ok := false
	switch p.Type {
	case TypeString:
		var s string
		if s, ok = p.Value.(string); ok && !utf8.ValidString(s) {
			return fmt.Errorf("string is not valid UTF-8")
		}
	case TypeInt32:
		_, ok = p.Value.(int32)
	case TypeInt64:
		_, ok = p.Value.(int64)
	case TypeDouble:
		_, ok = p.Value.(float64)
	case TypeBoolean:
		_, ok = p.Value.(bool)
	case TypeDateTime:
		var t time.Time
		if t, ok = p.Value.(time.Time); ok && (t.Location() != time.UTC || t.Year() < 1 || t.Year() > 9999) {
			return errors.New("date time is not UTC within years 1 to 9999")
		}
	case TypeGUID:
		var s string
		if s, ok = p.Value.(string); ok && !isGUID(s) {
			return errors.New("value is not a GUID")
		}
	case TypeBinary:
		_, ok = p.Value.([]byte)
	default:
		return fmt.Errorf("unknown type %d", uint8(p.Type))
	}
	if !ok {
		return fmt.Errorf("value of Go type %T does not match %v", p.Value, p.Type)
	}
	return nil
}

// isGUID reports whether s is 8-4-4-4-12 hex digits (any case: the
// service keeps the case it was given, so we keep it too).
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// Equal reports whether two properties have the same name, type and value;
// doubles compare by bits, so NaN equals NaN and 0 differs from -0.
func (p Property) Equal(q Property) bool {
	if p.Name != q.Name || p.Type != q.Type {
		return false
	}
	switch a := p.Value.(type) {
	case float64:
		b, ok := q.Value.(float64)
		return ok && math.Float64bits(a) == math.Float64bits(b)
	case []byte:
		b, ok := q.Value.([]byte)
		return ok && bytes.Equal(a, b)
	case time.Time:
		b, ok := q.Value.(time.Time)
		return ok && a.Equal(b)
	default:
		return p.Value == q.Value
	}
}

// Equal reports whether two records have the same key and properties.
func (r Record) Equal(s Record) bool {
	return r.RowKey == s.RowKey && slices.EqualFunc(r.Properties, s.Properties, Property.Equal)
}
