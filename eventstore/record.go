package eventstore

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// HashVersion is the version of the record encoding and hash defined in
// docs/hash-spec.md. Any change to Encode or LeafHash needs a new version.
const HashVersion uint16 = 1

// HashSize is the size in bytes of a record hash.
const HashSize = sha256.Size

// Hash is a SHA-256 record hash.
type Hash [HashSize]byte

// GenesisPrevHash returns the prev_hash of the first record of every chain:
// 32 zero bytes. It is a function so that no one can change it.
func GenesisPrevHash() Hash { return Hash{} }

// ErrMalformedRecord is returned when stored or exported bytes do not parse as
// a record encoding.
var ErrMalformedRecord = errors.New("eventstore: malformed record")

// Draft is a record before the store sequences it. The store assigns the
// chain, seq, id, prev_hash and hash.
type Draft struct {
	// Time is when the fact happened, by the caller's clock. Zero means the
	// store's clock. The store raises it to the previous record's time if it
	// would go backwards, so time never decreases along a chain.
	Time time.Time
	// Type is the stable wire name of the fact, such as "key.created".
	Type string
	// Actor is who caused it: a key id or "system:...".
	Actor string
	// Payload is stored and hashed exactly as given. The store keeps its own
	// copy.
	Payload []byte
}

// Record is one sequenced, hashed fact of a chain.
type Record struct {
	Chain       string
	Seq         uint64
	ID          string // ULID, 26 characters
	Time        time.Time
	Type        string
	Actor       string
	Payload     []byte
	PrevHash    Hash
	Hash        Hash
	HashVersion uint16
}

// LeafHash is the one hash function of custos: SHA-256 over the byte 0x00
// followed by a record's canonical encoding (RFC 6962 leaf hashing). Nothing
// else computes record hashes.
func LeafHash(encoding []byte) Hash {
	h := sha256.New()
	h.Write([]byte{0x00})
	h.Write(encoding)
	var out Hash
	h.Sum(out[:0])
	return out
}

// Encode appends the canonical encoding of r (every field except Hash, see
// docs/hash-spec.md) to dst and returns the extended slice.
func (r *Record) Encode(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, r.HashVersion)
	dst = appendBytes(dst, []byte(r.Chain))
	dst = binary.BigEndian.AppendUint64(dst, r.Seq)
	dst = appendBytes(dst, []byte(r.ID))
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.Time.UnixNano()))
	dst = appendBytes(dst, []byte(r.Type))
	dst = appendBytes(dst, []byte(r.Actor))
	dst = appendBytes(dst, r.Payload)
	dst = append(dst, r.PrevHash[:]...)
	return dst
}

// ComputeHash returns LeafHash of r's canonical encoding.
func (r *Record) ComputeHash() Hash {
	return LeafHash(r.Encode(make([]byte, 0, r.encodedSize())))
}

func (r *Record) encodedSize() int {
	return 2 + 4 + len(r.Chain) + 8 + 4 + len(r.ID) + 8 + 4 + len(r.Type) + 4 + len(r.Actor) + 4 + len(r.Payload) + HashSize
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}

// View is a zero-copy parse of a stored record: its byte slices point into
// the buffer it was parsed from and are valid only as long as that buffer.
type View struct {
	HashVersion uint16
	Chain       []byte
	Seq         uint64
	ID          []byte
	TimeNanos   int64
	Type        []byte
	Actor       []byte
	Payload     []byte
	PrevHash    []byte // HashSize bytes
	// Encoding is the canonical encoding that Hash covers.
	Encoding []byte
	// Hash is the stored hash (HashSize bytes).
	Hash []byte
}

// ParseStored parses a stored record (canonical encoding followed by the
// hash). It checks structure only, not the hash. Errors wrap
// ErrMalformedRecord.
func ParseStored(stored []byte) (View, error) {
	var v View
	if len(stored) < HashSize {
		return v, fmt.Errorf("%w: %d bytes, shorter than a hash", ErrMalformedRecord, len(stored))
	}
	body := stored[:len(stored)-HashSize]
	p := parser{buf: body}
	v.HashVersion = p.uint16()
	v.Chain = p.bytes()
	v.Seq = p.uint64()
	v.ID = p.bytes()
	v.TimeNanos = int64(p.uint64())
	v.Type = p.bytes()
	v.Actor = p.bytes()
	v.Payload = p.bytes()
	v.PrevHash = p.fixed(HashSize)
	if p.err != nil {
		return View{}, p.err
	}
	if len(p.buf) != 0 {
		return View{}, fmt.Errorf("%w: %d trailing bytes", ErrMalformedRecord, len(p.buf))
	}
	v.Encoding = body
	v.Hash = stored[len(body):]
	return v, nil
}

// Record copies v into a Record that owns its memory.
func (v *View) Record() Record {
	r := Record{
		Chain:       string(v.Chain),
		Seq:         v.Seq,
		ID:          string(v.ID),
		Time:        time.Unix(0, v.TimeNanos).UTC(),
		Type:        string(v.Type),
		Actor:       string(v.Actor),
		Payload:     cloneBytes(v.Payload),
		HashVersion: v.HashVersion,
	}
	copy(r.PrevHash[:], v.PrevHash)
	copy(r.Hash[:], v.Hash)
	return r
}

type parser struct {
	buf []byte
	err error
}

func (p *parser) fixed(n int) []byte {
	if p.err != nil {
		return nil
	}
	if len(p.buf) < n {
		p.err = fmt.Errorf("%w: need %d bytes, have %d", ErrMalformedRecord, n, len(p.buf))
		return nil
	}
	b := p.buf[:n:n]
	p.buf = p.buf[n:]
	return b
}

func (p *parser) uint16() uint16 {
	if b := p.fixed(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (p *parser) uint64() uint64 {
	if b := p.fixed(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (p *parser) bytes() []byte {
	b := p.fixed(4)
	if b == nil {
		return nil
	}
	return p.fixed(int(binary.BigEndian.Uint32(b)))
}

// cloneBytes copies b; the copy is never nil, so records compare equal
// whether they were built or read back.
func cloneBytes(b []byte) []byte {
	c := make([]byte, len(b))
	copy(c, b)
	return c
}
