// Package wire is the binary encoding of the domain's state snapshots, shared
// by the subdomain packages so that they all write integers, strings, times
// and lists the same way.
//
// The encoding is positional (no field names): each package writes a format
// version first and then its fields in a fixed order, and must bump the
// version whenever that order or a field's meaning changes. Integers are
// varints; strings and lists are a count followed by the items; a nil list
// is told apart from an empty one (count+1, with 0 meaning nil), so a
// restored state equals the live one exactly. Times are stored as Unix
// seconds and nanoseconds and always restored in UTC, which is how every
// state stores its times.
//
// Reader never panics on malformed input and never allocates more than the
// input could describe: a count larger than the bytes left is an error. Its
// error is sticky: after the first problem every read returns a zero value
// and Err reports the problem.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// ErrCorrupt reports a snapshot that does not decode: truncated, trailing
// bytes, or a count or value out of range.
var ErrCorrupt = errors.New("domain: snapshot corrupt")

// ErrVersion reports a snapshot written in a format version this build does
// not read.
var ErrVersion = errors.New("domain: snapshot version not supported")

// Writer appends encoded values to a buffer. The zero Writer is ready.
type Writer struct{ buf []byte }

// NewWriter returns a Writer whose buffer starts with capacity size hint.
func NewWriter(sizeHint int) *Writer { return &Writer{buf: make([]byte, 0, sizeHint)} }

// Bytes returns the encoded bytes. The Writer must not be used afterwards.
func (w *Writer) Bytes() []byte { return w.buf }

// Uvarint writes v.
func (w *Writer) Uvarint(v uint64) { w.buf = binary.AppendUvarint(w.buf, v) }

// Varint writes v (zig-zag).
func (w *Writer) Varint(v int64) { w.buf = binary.AppendVarint(w.buf, v) }

// Int writes v.
func (w *Writer) Int(v int) { w.Varint(int64(v)) }

// Bool writes v as one byte.
func (w *Writer) Bool(v bool) {
	b := byte(0)
	if v {
		b = 1
	}
	w.buf = append(w.buf, b)
}

// String writes len(s) and s.
func (w *Writer) String(s string) {
	w.Uvarint(uint64(len(s)))
	w.buf = append(w.buf, s...)
}

// Raw writes len(b) and b.
func (w *Writer) Raw(b []byte) {
	w.Uvarint(uint64(len(b)))
	w.buf = append(w.buf, b...)
}

// Fixed writes b as is; the reader must know its length.
func (w *Writer) Fixed(b []byte) { w.buf = append(w.buf, b...) }

// Time writes t's Unix seconds and nanoseconds (its location is not kept).
func (w *Writer) Time(t time.Time) {
	w.Varint(t.Unix())
	w.Uvarint(uint64(t.Nanosecond()))
}

// Sizes of what Writer writes, for sizing a buffer exactly before writing.

// UvarintSize is the size Uvarint(v) writes.
func UvarintSize(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// VarintSize is the size Varint(v) writes.
func VarintSize(v int64) int {
	u := uint64(v) << 1
	if v < 0 {
		u = ^u
	}
	return UvarintSize(u)
}

// StringSize is the size String(s) writes.
func StringSize(s string) int { return UvarintSize(uint64(len(s))) + len(s) }

// TimeSize is the size Time(t) writes.
func TimeSize(t time.Time) int { return VarintSize(t.Unix()) + UvarintSize(uint64(t.Nanosecond())) }

// TimePtr writes whether t is set and then *t.
func (w *Writer) TimePtr(t *time.Time) {
	w.Bool(t != nil)
	if t != nil {
		w.Time(*t)
	}
}

// Count writes the length of a list that may be nil: 0 for nil, len+1
// otherwise.
func (w *Writer) Count(n int, isNil bool) {
	if isNil {
		w.Uvarint(0)
		return
	}
	w.Uvarint(uint64(n) + 1)
}

// PutStrings writes a list of strings, keeping nil apart from empty.
func PutStrings[S ~string](w *Writer, list []S) {
	w.Count(len(list), list == nil)
	for _, s := range list {
		w.String(string(s))
	}
}

// Reader decodes what a Writer wrote. Its error is sticky.
type Reader struct {
	b   []byte
	err error
}

// NewReader reads b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Err returns the first problem met, or nil.
func (r *Reader) Err() error { return r.err }

// Fail records a problem found by the caller (an invalid value), unless one
// was recorded before.
func (r *Reader) Fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	r.b = nil
}

// Done returns Err, or an error if bytes are left over.
func (r *Reader) Done() error {
	if r.err == nil && len(r.b) > 0 {
		r.Fail("%d trailing bytes", len(r.b))
	}
	return r.err
}

// Version reads a format version and fails with ErrVersion unless it is
// want.
func (r *Reader) Version(what string, want uint64) {
	v := r.Uvarint()
	if r.err == nil && v != want {
		r.err = fmt.Errorf("%w: %s snapshot version %d, this build reads version %d", ErrVersion, what, v, want)
		r.b = nil
	}
}

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.Fail("bad uvarint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Varint reads a signed varint.
func (r *Reader) Varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.Fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Int reads an int.
func (r *Reader) Int() int {
	v := r.Varint()
	if int64(int(v)) != v {
		r.Fail("int %d out of range", v)
		return 0
	}
	return int(v)
}

// Bool reads a bool; any byte other than 0 and 1 is corrupt.
func (r *Reader) Bool() bool {
	if r.err != nil {
		return false
	}
	if len(r.b) == 0 || r.b[0] > 1 {
		r.Fail("bad bool")
		return false
	}
	v := r.b[0] == 1
	r.b = r.b[1:]
	return v
}

// take returns the next n bytes (a view of the input).
func (r *Reader) take(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.Fail("length %d exceeds the %d bytes left", n, len(r.b))
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// String reads a string.
func (r *Reader) String() string { return string(r.take(r.Uvarint())) }

// Raw reads a length-prefixed byte string as a view of the input.
func (r *Reader) Raw() []byte { return r.take(r.Uvarint()) }

// Fixed reads exactly len(dst) bytes into dst.
func (r *Reader) Fixed(dst []byte) { copy(dst, r.take(uint64(len(dst)))) }

// Time reads a time written by Writer.Time, in UTC.
func (r *Reader) Time() time.Time {
	sec := r.Varint()
	nsec := r.Uvarint()
	if r.err != nil {
		return time.Time{}
	}
	if nsec >= 1e9 {
		r.Fail("nanoseconds %d out of range", nsec)
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

// TimePtr reads a time written by Writer.TimePtr.
func (r *Reader) TimePtr() *time.Time {
	if !r.Bool() {
		return nil
	}
	t := r.Time()
	if r.err != nil {
		return nil
	}
	return &t
}

// Count reads a list length written by Writer.Count. Every item takes at
// least minItemBytes (at least 1) bytes, so a count that the rest of the
// input cannot hold is corrupt and nothing is allocated for it.
func (r *Reader) Count(minItemBytes int) (n int, isNil bool) {
	c := r.Uvarint()
	if r.err != nil || c == 0 {
		return 0, true
	}
	return r.Len(c-1, minItemBytes), false
}

// Len checks a count n of items of at least minItemBytes bytes each against
// the input left, and returns it as an int (0 on error).
func (r *Reader) Len(n uint64, minItemBytes int) int {
	if r.err != nil {
		return 0
	}
	if minItemBytes < 1 {
		minItemBytes = 1
	}
	if n > uint64(len(r.b)/minItemBytes) {
		r.Fail("count %d exceeds the %d bytes left", n, len(r.b))
		return 0
	}
	return int(n)
}

// GetStrings reads a list written by PutStrings.
func GetStrings[S ~string](r *Reader) []S {
	n, isNil := r.Count(1)
	if isNil {
		return nil
	}
	out := make([]S, n)
	for i := range out {
		out[i] = S(r.String())
	}
	if r.err != nil {
		return nil
	}
	return out
}
