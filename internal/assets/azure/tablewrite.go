package azure

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/azerr"
	"github.com/twinit/byok-backup/internal/errcode"
)

// maxBatchBytes keeps a transaction under the service's 4 MiB payload
// limit with room for the multipart framing.
const maxBatchBytes = 3 << 20

// RecordWriter upserts records into one tenant's partition in
// transactions of up to [Options.BatchSize] entities, up to
// [Options.BatchConcurrency] of them in flight. Each upsert replaces the
// whole entity, so the stored record is exactly the given one (no
// properties left over from before). A failed transaction is reported by
// a later Put or by Flush. It is not safe for concurrent use.
type RecordWriter struct {
	s      *Store
	tenant string
	batch  []aztables.TransactionAction
	// nums are the batch's records' positions (1-based, in Put order):
	// errors name records by position, never by id.
	nums    []int64
	puts    int64
	size    int
	written atomic.Int64

	slots chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	err   error // the first failed transaction's
}

// NewRecordWriter returns a writer into tenant's partition. Call
// [RecordWriter.Flush] at the end.
func (s *Store) NewRecordWriter(tenant string) (assets.RecordWriter, error) {
	if err := assets.CheckTenant(tenant); err != nil {
		return nil, err
	}
	return &RecordWriter{s: s, tenant: tenant, slots: make(chan struct{}, s.opts.BatchConcurrency)}, nil
}

// Put queues r and submits a transaction when the batch is full; it
// returns an earlier transaction's failure, if any.
func (w *RecordWriter) Put(ctx context.Context, r assets.Record) error {
	if err := w.failed(); err != nil {
		return err
	}
	w.puts++
	if err := r.Validate(); err != nil {
		return fmt.Errorf("record #%d can't be written: %w", w.puts, err)
	}
	body, err := entityJSON(w.tenant, r)
	if err != nil {
		return err
	}
	if len(w.batch) > 0 && w.size+len(body) > maxBatchBytes {
		if err := w.submit(ctx); err != nil {
			return err
		}
	}
	w.batch = append(w.batch, aztables.TransactionAction{ActionType: aztables.TransactionTypeInsertReplace, Entity: body})
	w.nums = append(w.nums, w.puts)
	w.size += len(body)
	if len(w.batch) >= w.s.opts.BatchSize {
		return w.submit(ctx)
	}
	return nil
}

// Flush submits the queued records, waits for every transaction in
// flight and returns the first failure.
func (w *RecordWriter) Flush(ctx context.Context) error {
	err := w.submit(ctx)
	w.wg.Wait()
	if ferr := w.failed(); ferr != nil {
		return ferr
	}
	return err
}

// submit starts the queued batch's transaction once a slot is free.
func (w *RecordWriter) submit(ctx context.Context) error {
	if len(w.batch) == 0 {
		return nil
	}
	batch, nums := w.batch, w.nums
	w.batch, w.nums, w.size = w.batch[:0:0], w.nums[:0:0], 0
	select {
	case w.slots <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	w.wg.Go(func() {
		defer func() { <-w.slots }()
		if err := w.transact(ctx, batch, nums); err != nil {
			w.mu.Lock()
			if w.err == nil {
				w.err = err
			}
			w.mu.Unlock()
		}
	})
	return w.failed()
}

func (w *RecordWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// transact submits one batch. When the transaction fails it retries each
// record on its own, so one bad record can't hide which one it was, and
// returns the first single failure.
func (w *RecordWriter) transact(ctx context.Context, batch []aztables.TransactionAction, nums []int64) error {
	_, err := w.s.table.SubmitTransaction(ctx, batch, nil)
	if err == nil {
		w.written.Add(int64(len(batch)))
		return nil
	}
	w.s.log.WarnContext(ctx, "record transaction failed, upserting one by one",
		"tenant", w.tenant, "records", len(batch), "error", azerr.Redact(err))
	var first error
	failed := 0
	for i, a := range batch {
		_, uerr := w.s.table.UpsertEntity(ctx, a.Entity, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace})
		if uerr != nil {
			failed++
			if first == nil {
				first = fmt.Errorf("failed to upsert record #%d of tenant %q: %w", nums[i], w.tenant, azerr.Redact(uerr))
			}
			continue
		}
		w.written.Add(1)
	}
	if first != nil {
		return errcode.Wrap(first, errcode.ServiceUnavailable,
			"%d of %d records could not be written to the target tenant's table; the restore can be retried.", failed, len(batch))
	}
	return nil
}

// Written is the number of records stored so far.
func (w *RecordWriter) Written() int64 { return w.written.Load() }

// dateTimeLayout writes the service's 7 fractional digits (100 ns ticks).
const dateTimeLayout = "2006-01-02T15:04:05.0000000Z"

// entityJSON renders the entity with every non-obvious type annotated:
// Double always (a whole double would otherwise be stored as Int32),
// Int64, DateTime, Guid and Binary as the service requires.
func entityJSON(tenant string, r assets.Record) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"PartitionKey":`)
	writeJSONString(&b, tenant)
	b.WriteString(`,"RowKey":`)
	writeJSONString(&b, r.RowKey)
	for _, p := range r.Properties {
		b.WriteByte(',')
		writeJSONString(&b, p.Name)
		b.WriteByte(':')
		switch v := p.Value.(type) {
		case string:
			writeJSONString(&b, v)
		case int32:
			b.WriteString(strconv.FormatInt(int64(v), 10))
		case int64:
			writeJSONString(&b, strconv.FormatInt(v, 10))
		case float64:
			switch {
			case math.IsNaN(v):
				b.WriteString(`"NaN"`)
			case math.IsInf(v, 1):
				b.WriteString(`"Infinity"`)
			case math.IsInf(v, -1):
				b.WriteString(`"-Infinity"`)
			default:
				b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
			}
		case bool:
			b.WriteString(strconv.FormatBool(v))
		case time.Time:
			writeJSONString(&b, formatDateTime(v))
		case []byte:
			writeJSONString(&b, base64.StdEncoding.EncodeToString(v))
		default:
			return nil, fmt.Errorf("property %s has unsupported Go type %T", assets.Tag(p.Name), p.Value)
		}
		if p.Type != assets.TypeString && p.Type != assets.TypeBoolean && p.Type != assets.TypeInt32 {
			b.WriteByte(',')
			writeJSONString(&b, p.Name+"@odata.type")
			b.WriteByte(':')
			writeJSONString(&b, p.Type.String())
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// formatDateTime uses the service's 7 digits, or 9 when the value has
// sub-tick nanoseconds (an emulator may store them), so nothing is lost.
func formatDateTime(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()%100 != 0 {
		return t.Format("2006-01-02T15:04:05.000000000Z")
	}
	return t.Format(dateTimeLayout)
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc, _ := json.Marshal(s) // a string always marshals
	b.Write(enc)
}
