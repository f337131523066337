// Package seed writes synthetic assets for the local demo and benchmarks.
// It is development tooling: the handler never links it.
package seed

import (
	"context"
	"fmt"
	"github.com/twinit/byok-backup/internal/assets"
	"math"
	"math/rand/v2"
	"time"
)

// Options say what [Tenant] writes.
type Options struct {
	Records int
	Files   int
	// FileSize is the largest file; sizes cycle through 0, small (≤ 1 KiB),
	// middle (FileSize/3) and FileSize, so both upload paths are exercised
	// when FileSize exceeds the block size.
	FileSize int64
	// Seed makes the data reproducible (same seed, same bytes).
	Seed uint64
}

// Tenant writes synthetic assets for tenant, for benchmarks and the local
// demo: records with every EDM type (edge values included) and files of
// mixed sizes and properties, streamed from a PRNG so memory stays bounded.
// It returns the counts written.
func Tenant(ctx context.Context, s assets.Store, tenant string, o Options) (assets.Counts, error) {
	var c assets.Counts
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	w, err := s.NewRecordWriter(tenant)
	if err != nil {
		return c, err
	}
	for i := range o.Records {
		if err := w.Put(ctx, seedRecord(rng, i)); err != nil {
			return c, err
		}
	}
	if err := w.Flush(ctx); err != nil {
		return c, err
	}
	c.Records = w.Written()
	types := []string{"application/json", "text/plain; charset=utf-8", "application/octet-stream", "image/png"}
	for i := range o.Files {
		f := assets.File{
			Path:         fmt.Sprintf("twins/%03d/asset-%05d.bin", i%7, i),
			Size:         seedSize(rng, i, o.FileSize),
			ContentType:  types[i%len(types)],
			CacheControl: "max-age=3600",
			Metadata:     map[string]string{"Seq": fmt.Sprint(i), "kind": []string{"model", "doc", "scan"}[i%3]},
		}
		if i%2 == 0 {
			f.ContentEncoding, f.ContentLanguage = "identity", "en-GB"
			f.ContentDisposition = fmt.Sprintf(`attachment; filename="asset-%d.bin"`, i)
		}
		src := &prngReader{r: rand.New(rand.NewPCG(o.Seed, uint64(i)))}
		if err := s.PutFile(ctx, tenant, f, src); err != nil {
			return c, err
		}
		c.Files++
		c.Bytes += f.Size
	}
	return c, nil
}

func seedSize(rng *rand.Rand, i int, max int64) int64 {
	if max <= 0 {
		return 0
	}
	switch i % 4 {
	case 0:
		return 0
	case 1:
		return rng.Int64N(min(max, 1024) + 1)
	case 2:
		return max / 3
	default:
		return max
	}
}

func seedRecord(rng *rand.Rand, i int) assets.Record {
	bin := make([]byte, rng.IntN(64))
	for j := range bin {
		bin[j] = byte(rng.Uint32())
	}
	doubles := []float64{rng.Float64() * 1000, 21, math.Inf(1), math.NaN(), math.MaxFloat64, -1e-300}
	r := assets.Record{RowKey: fmt.Sprintf("asset-%06d", i), Properties: []assets.Property{
		{Name: "Name", Type: assets.TypeString, Value: fmt.Sprintf("Pump %d – Halle ∆%d", i, i%9)},
		{Name: "Floor", Type: assets.TypeInt32, Value: int32(rng.IntN(200) - 5)},
		{Name: "Serial", Type: assets.TypeInt64, Value: []int64{math.MaxInt64, math.MinInt64, rng.Int64()}[i%3]},
		{Name: "Reading", Type: assets.TypeDouble, Value: doubles[i%len(doubles)]},
		{Name: "Active", Type: assets.TypeBoolean, Value: i%2 == 0},
		{Name: "InstalledAt", Type: assets.TypeDateTime, Value: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).
			Add(time.Duration(rng.Int64N(1e17)) / 100 * 100)},
		{Name: "TwinId", Type: assets.TypeGUID, Value: fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x",
			rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xfff, rng.Uint32()&0xfff, rng.Uint64()&0xffffffffffff)},
		{Name: "Thumb", Type: assets.TypeBinary, Value: bin},
	}}
	if i%5 == 0 {
		r.Properties = append(r.Properties, assets.Property{Name: "Notes", Type: assets.TypeString, Value: ""})
	}
	r.SortProperties()
	return r
}

// prngReader is an endless stream of pseudo-random bytes.
type prngReader struct{ r *rand.Rand }

func (p *prngReader) Read(b []byte) (int, error) {
	for i := 0; i < len(b); {
		v := p.r.Uint64()
		for k := 0; k < 8 && i < len(b); k++ {
			b[i] = byte(v >> (8 * k))
			i++
		}
	}
	return len(b), nil
}
