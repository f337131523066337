package assets

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
	"unicode/utf8"
)

// Kind is what [Decoder.Next] found.
type Kind int

// The kinds of items in a stream.
const (
	KindRecord Kind = iota + 1
	KindFile
)

// Decoder reads a stream written by [Encoder], strictly: every length is
// bounded before anything is allocated, keys and paths must ascend,
// declared sizes and the end frame's counts must match what was read, and
// nothing may follow the end frame. Format violations are [FormatError]s
// wrapped with code IntegrityCheckFailed; errors of the underlying reader
// (e.g. the envelope's authentication failure) are returned unchanged.
type Decoder struct {
	r        *bufio.Reader
	off      int64
	started  bool
	inFiles  bool
	done     bool
	err      error
	buf      []byte
	rec      Record
	file     File
	left     int64 // unread content bytes of the current file
	counts   Counts
	last     string
	haveLast bool
}

// NewDecoder returns a Decoder reading from r.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{r: bufio.NewReaderSize(r, 64<<10)}
}

// Next moves to the next record or file. It returns io.EOF once the end
// frame has been read, its counts checked and the input found to end
// there. Unread content of the previous file is skipped.
func (d *Decoder) Next() (Kind, error) {
	if d.err != nil {
		return 0, d.err
	}
	k, err := d.next()
	if err != nil {
		d.err = err
	}
	return k, err
}

func (d *Decoder) next() (Kind, error) {
	if !d.started {
		var h [len(magic) + 1]byte
		if err := d.readFull(h[:]); err != nil {
			return 0, err
		}
		if string(h[:len(magic)]) != magic {
			return 0, formatErr(0, nil, "not an assets stream")
		}
		if h[len(magic)] != formatVersion {
			return 0, formatErr(int64(len(magic)), nil, "unsupported version %d", h[len(magic)])
		}
		d.started = true
	}
	if d.left > 0 {
		n, err := io.CopyN(io.Discard, d.r, d.left)
		d.off += n
		d.left -= n
		if err != nil {
			return 0, d.readErr(err)
		}
	}
	tag, err := d.r.ReadByte()
	if err != nil {
		return 0, d.readErr(err)
	}
	d.off++
	switch tag {
	case tagRecord:
		if d.inFiles {
			return 0, formatErr(d.off-1, nil, "record after files")
		}
		body, err := d.body(MaxRecordFrameSize)
		if err != nil {
			return 0, err
		}
		start := d.off - int64(len(body))
		if d.rec, err = parseRecord(body); err != nil {
			return 0, formatErr(start, err, "bad record")
		}
		if err := d.order(d.rec.RowKey, start); err != nil {
			return 0, err
		}
		d.counts.Records++
		return KindRecord, nil
	case tagFile:
		if !d.inFiles {
			d.inFiles, d.haveLast = true, false
		}
		body, err := d.body(MaxFileHeaderSize)
		if err != nil {
			return 0, err
		}
		start := d.off - int64(len(body))
		if d.file, err = parseFileHeader(body); err != nil {
			return 0, formatErr(start, err, "bad file header")
		}
		if err := d.order(d.file.Path, start); err != nil {
			return 0, err
		}
		d.left = d.file.Size
		d.counts.Files++
		d.counts.Bytes += d.file.Size
		return KindFile, nil
	case tagEnd:
		return 0, d.end()
	default:
		return 0, formatErr(d.off-1, nil, "unknown frame tag %#x", tag)
	}
}

func (d *Decoder) end() error {
	body, err := d.body(maxEndFrameSize)
	if err != nil {
		return err
	}
	start := d.off - int64(len(body))
	c := byteReader{b: body}
	var want [3]uint64
	for i := range want {
		if want[i], err = c.uvarint(); err != nil {
			return formatErr(start, err, "bad end frame")
		}
	}
	if len(c.b) != 0 {
		return formatErr(start, nil, "bad end frame: %d extra bytes", len(c.b))
	}
	got := d.counts
	if want != [3]uint64{uint64(got.Records), uint64(got.Files), uint64(got.Bytes)} {
		return formatErr(start, nil, "end frame counts %v, stream has %d records, %d files, %d bytes",
			want, got.Records, got.Files, got.Bytes)
	}
	if _, err := d.r.ReadByte(); err == nil {
		return formatErr(d.off, nil, "data after the end frame")
	} else if !errors.Is(err, io.EOF) {
		return err
	}
	d.done = true
	return io.EOF
}

// body reads a uvarint length (at most max) and that many bytes.
func (d *Decoder) body(max int) ([]byte, error) {
	start := d.off
	n, err := d.uvarint()
	if err != nil {
		return nil, err
	}
	if n > uint64(max) {
		return nil, formatErr(start, nil, "frame of %d bytes, more than %d", n, max)
	}
	if cap(d.buf) < int(n) {
		d.buf = make([]byte, n)
	}
	d.buf = d.buf[:n]
	if err := d.readFull(d.buf); err != nil {
		return nil, err
	}
	return d.buf, nil
}

func (d *Decoder) readFull(b []byte) error {
	n, err := io.ReadFull(d.r, b)
	d.off += int64(n)
	if err != nil {
		return d.readErr(err)
	}
	return nil
}

// readErr turns an end of input into a truncation error and passes any
// other error of the underlying reader through.
func (d *Decoder) readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return formatErr(d.off, io.ErrUnexpectedEOF, "stream ends without its end frame")
	}
	return err
}

// uvarint reads a minimal uvarint from the stream.
func (d *Decoder) uvarint() (uint64, error) {
	start := d.off
	var v uint64
	for i := 0; i < binary.MaxVarintLen64; i++ {
		b, err := d.r.ReadByte()
		if err != nil {
			return 0, d.readErr(err)
		}
		d.off++
		if b < 0x80 {
			if (i == binary.MaxVarintLen64-1 && b > 1) || (i > 0 && b == 0) {
				break
			}
			return v | uint64(b)<<(7*i), nil
		}
		v |= uint64(b&0x7f) << (7 * i)
	}
	return 0, formatErr(start, errOverflow, "bad length")
}

var errOverflow = errors.New("uvarint overflows 64 bits or is not minimal")

func (d *Decoder) order(key string, off int64) error {
	if d.haveLast && CompareKeys(d.last, key) >= 0 {
		return formatErr(off, ErrOutOfOrder, "key %s after %s", Tag(key), Tag(d.last))
	}
	d.last, d.haveLast = key, true
	return nil
}

// Record is the record [Decoder.Next] just returned KindRecord for.
func (d *Decoder) Record() Record { return d.rec }

// File is the file [Decoder.Next] just returned KindFile for; its ETag is empty.
func (d *Decoder) File() File { return d.file }

// Content reads the current file's content: exactly File().Size bytes,
// then io.EOF. It is valid until the next call to Next.
func (d *Decoder) Content() io.Reader { return contentReader{d} }

// Counts are the records, files and bytes decoded so far; after Next
// returned io.EOF, the stream's checked totals.
func (d *Decoder) Counts() Counts { return d.counts }

type contentReader struct{ d *Decoder }

func (c contentReader) Read(p []byte) (int, error) {
	d := c.d
	if d.err != nil {
		return 0, d.err
	}
	if d.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > d.left {
		p = p[:d.left]
	}
	n, err := d.r.Read(p)
	d.off += int64(n)
	d.left -= int64(n)
	if err != nil && (d.left > 0 || !errors.Is(err, io.EOF)) {
		d.err = d.readErr(err)
		return n, d.err
	}
	return n, nil
}

// byteReader parses a frame body held in memory.
type byteReader struct{ b []byte }

func (c *byteReader) uvarint() (uint64, error) {
	v, n := binary.Uvarint(c.b)
	if n <= 0 || n != uvarintLen(v) {
		return 0, errOverflow
	}
	c.b = c.b[n:]
	return v, nil
}

func (c *byteReader) bytes(n uint64) ([]byte, error) {
	if n > uint64(len(c.b)) {
		return nil, io.ErrUnexpectedEOF
	}
	out := c.b[:n:n]
	c.b = c.b[n:]
	return out, nil
}

func (c *byteReader) string() (string, error) {
	n, err := c.uvarint()
	if err != nil {
		return "", err
	}
	b, err := c.bytes(n)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", errors.New("string is not valid UTF-8")
	}
	return string(b), nil
}

func (c *byteReader) fixed(n int) ([]byte, error) { return c.bytes(uint64(n)) }

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func parseRecord(body []byte) (Record, error) {
	c := byteReader{b: body}
	var r Record
	var err error
	if r.RowKey, err = c.string(); err != nil {
		return r, err
	}
	n, err := c.uvarint()
	if err != nil {
		return r, err
	}
	if n > MaxProperties {
		return r, fmt.Errorf("%d properties, more than %d", n, MaxProperties)
	}
	r.Properties = make([]Property, 0, n)
	for i := range n {
		var p Property
		if p.Name, err = c.string(); err != nil {
			return r, err
		}
		t, err := c.fixed(1)
		if err != nil {
			return r, err
		}
		p.Type = Type(t[0])
		if p.Value, err = parseRecordValue(&c, p.Type); err != nil {
			return r, fmt.Errorf("property #%d: %w", i+1, err)
		}
		r.Properties = append(r.Properties, p)
	}
	if len(c.b) != 0 {
		return r, fmt.Errorf("%d bytes after the last property", len(c.b))
	}
	return r, r.Validate()
}

func parseRecordValue(c *byteReader, t Type) (any, error) {
	fixed := map[Type]int{TypeInt32: 4, TypeInt64: 8, TypeDouble: 8, TypeBoolean: 1, TypeDateTime: 12}
	var b []byte
	var err error
	if n, ok := fixed[t]; ok {
		if b, err = c.fixed(n); err != nil {
			return nil, err
		}
	}
	switch t {
	case TypeString, TypeGUID:
		return c.string()
	case TypeInt32:
		return int32(binary.BigEndian.Uint32(b)), nil
	case TypeInt64:
		return int64(binary.BigEndian.Uint64(b)), nil
	case TypeDouble:
		return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
	case TypeBoolean:
		if b[0] > 1 {
			return nil, fmt.Errorf("boolean byte %d", b[0])
		}
		return b[0] == 1, nil
	case TypeDateTime:
		sec, ns := int64(binary.BigEndian.Uint64(b)), binary.BigEndian.Uint32(b[8:])
		if ns >= 1e9 {
			return nil, fmt.Errorf("%d nanoseconds", ns)
		}
		return time.Unix(sec, int64(ns)).UTC(), nil
	case TypeBinary:
		n, err := c.uvarint()
		if err != nil {
			return nil, err
		}
		v, err := c.bytes(n)
		if err != nil {
			return nil, err
		}
		return append([]byte{}, v...), nil
	}
	return nil, fmt.Errorf("unknown type %d", uint8(t))
}

func parseFileHeader(body []byte) (File, error) {
	c := byteReader{b: body}
	var f File
	var err error
	if f.Path, err = c.string(); err != nil {
		return f, err
	}
	size, err := c.uvarint()
	if err != nil {
		return f, err
	}
	if size > MaxFileSize {
		return f, fmt.Errorf("size %d, more than %d", size, uint64(MaxFileSize))
	}
	f.Size = int64(size)
	for _, s := range []*string{&f.ContentType, &f.ContentEncoding, &f.ContentLanguage, &f.ContentDisposition, &f.CacheControl} {
		if *s, err = c.string(); err != nil {
			return f, err
		}
	}
	n, err := c.uvarint()
	if err != nil {
		return f, err
	}
	if n > maxMetadataEntries {
		return f, fmt.Errorf("%d metadata entries, more than %d", n, maxMetadataEntries)
	}
	prev := ""
	for i := range n {
		k, err := c.string()
		if err != nil {
			return f, err
		}
		v, err := c.string()
		if err != nil {
			return f, err
		}
		if i > 0 && k <= prev {
			return f, fmt.Errorf("metadata entry #%d out of order or repeated", i+1)
		}
		prev = k
		if f.Metadata == nil {
			f.Metadata = make(map[string]string, n)
		}
		f.Metadata[k] = v
	}
	if len(c.b) != 0 {
		return f, fmt.Errorf("%d bytes after the metadata", len(c.b))
	}
	return f, f.Validate()
}
