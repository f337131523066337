package assets

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// Encoder writes a tenant's assets as one stream (see doc.go): all
// records in key order, then all files in path order with their content,
// then an end frame with the counts. Errors are sticky: after one, every
// call returns it. It is the plaintext the envelope encrypts.
type Encoder struct {
	w        *bufio.Writer
	buf      []byte
	counts   Counts
	started  bool
	files    bool // a file was written: no more records
	closed   bool
	last     string
	haveLast bool
	err      error
}

// NewEncoder returns an Encoder writing to w. Nothing is written until the
// first call.
func NewEncoder(w io.Writer) *Encoder {
	return &Encoder{w: bufio.NewWriterSize(w, 64<<10)}
}

// ErrEncoderState reports a call the stream order doesn't allow: a record
// after a file, or any write after Close.
var ErrEncoderState = errors.New("assets encoder: records must precede files, and nothing follows Close")

func (e *Encoder) start() {
	if !e.started && e.err == nil {
		e.started = true
		_, e.err = e.w.Write(append([]byte(magic), formatVersion))
	}
}

func (e *Encoder) order(key string) error {
	if e.haveLast && CompareKeys(e.last, key) >= 0 {
		return fmt.Errorf("key %s after %s: %w", Tag(key), Tag(e.last), ErrOutOfOrder)
	}
	e.last, e.haveLast = key, true
	return nil
}

// WriteRecord appends r. Records must come in strictly ascending
// [CompareKeys] order of RowKey, before any file.
func (e *Encoder) WriteRecord(r Record) error {
	if e.err != nil {
		return e.err
	}
	if e.files || e.closed {
		e.err = ErrEncoderState
		return e.err
	}
	if err := r.Validate(); err != nil {
		e.err = fmt.Errorf("record #%d can't be encoded: %w", e.counts.Records+1, err)
		return e.err
	}
	if e.err = e.order(r.RowKey); e.err != nil {
		return e.err
	}
	e.start()
	e.buf = appendRecord(e.buf[:0], r)
	if len(e.buf) > MaxRecordFrameSize {
		e.err = fmt.Errorf("record #%d encodes to %d bytes, more than %d", e.counts.Records+1, len(e.buf), MaxRecordFrameSize)
		return e.err
	}
	e.frame(tagRecord, e.buf)
	e.counts.Records++
	return e.err
}

// WriteFile appends f's header and exactly f.Size bytes read from
// content, streamed (never held in memory). Files come after all records,
// in strictly ascending [CompareKeys] order of Path. A content that ends
// early or has bytes beyond f.Size is an error: the stream is then
// unusable, as the backup that reads a changing file must be retried.
func (e *Encoder) WriteFile(f File, content io.Reader) error {
	if e.err != nil {
		return e.err
	}
	if e.closed {
		e.err = ErrEncoderState
		return e.err
	}
	if err := f.Validate(); err != nil {
		e.err = fmt.Errorf("file #%d can't be encoded: %w", e.counts.Files+1, err)
		return e.err
	}
	if !e.files {
		e.files, e.haveLast = true, false // paths have their own order
	}
	if e.err = e.order(f.Path); e.err != nil {
		return e.err
	}
	e.start()
	e.buf = appendFileHeader(e.buf[:0], f)
	if len(e.buf) > MaxFileHeaderSize {
		e.err = fmt.Errorf("file #%d header encodes to %d bytes, more than %d", e.counts.Files+1, len(e.buf), MaxFileHeaderSize)
		return e.err
	}
	e.frame(tagFile, e.buf)
	if e.err != nil {
		return e.err
	}
	n, err := io.CopyN(e.w, content, f.Size)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("file #%d has %d bytes, %d listed: %w", e.counts.Files+1, n, f.Size, ErrShortContent)
		}
		e.err = fmt.Errorf("failed to copy file #%d: %w", e.counts.Files+1, err)
		return e.err
	}
	var one [1]byte
	if m, err := io.ReadFull(content, one[:]); m != 0 || !errors.Is(err, io.EOF) {
		if err == nil || m != 0 {
			err = fmt.Errorf("file #%d has more than its %d listed bytes: %w", e.counts.Files+1, f.Size, ErrFileChanged)
		}
		e.err = fmt.Errorf("failed to copy file #%d: %w", e.counts.Files+1, err)
		return e.err
	}
	e.counts.Files++
	e.counts.Bytes += f.Size
	return nil
}

// Close writes the end frame and flushes. It does not close the
// underlying writer.
func (e *Encoder) Close() error {
	if e.err != nil {
		return e.err
	}
	if e.closed {
		return nil
	}
	e.start()
	e.buf = binary.AppendUvarint(e.buf[:0], uint64(e.counts.Records))
	e.buf = binary.AppendUvarint(e.buf, uint64(e.counts.Files))
	e.buf = binary.AppendUvarint(e.buf, uint64(e.counts.Bytes))
	e.frame(tagEnd, e.buf)
	if e.err == nil {
		e.err = e.w.Flush()
	}
	e.closed = true
	return e.err
}

// Counts are the records, files and content bytes written so far.
func (e *Encoder) Counts() Counts { return e.counts }

func (e *Encoder) frame(tag byte, body []byte) {
	if e.err != nil {
		return
	}
	var hdr [1 + binary.MaxVarintLen64]byte
	hdr[0] = tag
	n := binary.PutUvarint(hdr[1:], uint64(len(body)))
	if _, e.err = e.w.Write(hdr[:1+n]); e.err == nil {
		_, e.err = e.w.Write(body)
	}
}

// appendRecord encodes a valid record's body.
func appendRecord(b []byte, r Record) []byte {
	b = appendString(b, r.RowKey)
	b = binary.AppendUvarint(b, uint64(len(r.Properties)))
	for _, p := range r.Properties {
		b = appendString(b, p.Name)
		b = append(b, byte(p.Type))
		switch v := p.Value.(type) {
		case string: // String and Guid
			b = appendString(b, v)
		case int32:
			b = binary.BigEndian.AppendUint32(b, uint32(v))
		case int64:
			b = binary.BigEndian.AppendUint64(b, uint64(v))
		case float64:
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(v))
		case bool:
			if v {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		case time.Time:
			b = binary.BigEndian.AppendUint64(b, uint64(v.Unix()))
			b = binary.BigEndian.AppendUint32(b, uint32(v.Nanosecond()))
		case []byte:
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		}
	}
	return b
}
