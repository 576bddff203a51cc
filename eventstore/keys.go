package eventstore

import (
	"encoding/binary"
	"fmt"
	"regexp"
)

// Pebble key layout. Every key starts with a one-byte kind so that kinds never
// interleave:
//
//	'r' chain 0x00 seq(8, big-endian)  → stored record (encoding ‖ hash)
//	'h' chain                          → chain head: seq(8, big-endian) ‖ hash(32)
//	't' chain 0x00 index(8, big-endian) → Merkle tree hash(32) with tlog stored hash index
//	'c' chain 0x00 size(8, big-endian)  → signed checkpoint (note) of tree size
//
// A chain name never holds 0x00, so kind ‖ chain ‖ 0x00 is a prefix of the
// keys of exactly one chain: no prefix of one chain's keys matches another's
// (acme against acme2), whatever the names' lengths, which is what tenants
// (one chain each) need of a fixed width without padding every name. Aux
// namespaces end at 0x00 the same way ('x' ns 0x00 key). Head keys have no
// terminator: they are only read by exact key or all at once.
const (
	kindRecord     byte = 'r'
	kindHead       byte = 'h'
	kindTree       byte = 't'
	kindCheckpoint byte = 'c'
)

// DefaultChain is the chain of tenant "default" (domain/tenants.DefaultID):
// the single chain of every folder written before tenants existed.
const DefaultChain = "default"

var chainNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ValidateChain reports whether name is a legal chain name: 1 to 63
// characters of lowercase letters, digits, '-' and '_', starting with a
// letter or digit.
func ValidateChain(name string) error {
	if !chainNamePattern.MatchString(name) {
		return fmt.Errorf("eventstore: invalid chain name %q (want %s)", name, chainNamePattern)
	}
	return nil
}

// RecordKey returns the Pebble key of record seq of chain. Exported for tools
// and tamper tests that inspect the store directly.
func RecordKey(chain string, seq uint64) []byte {
	return appendRecordKey(make([]byte, 0, 1+len(chain)+1+8), chain, seq)
}

func appendRecordKey(dst []byte, chain string, seq uint64) []byte {
	dst = append(dst, kindRecord)
	dst = append(dst, chain...)
	dst = append(dst, 0x00)
	return binary.BigEndian.AppendUint64(dst, seq)
}

// HeadKey returns the Pebble key of chain's head.
func HeadKey(chain string) []byte {
	k := make([]byte, 0, 1+len(chain))
	k = append(k, kindHead)
	return append(k, chain...)
}

// seqFromRecordKey returns the seq of a record key of chain.
func seqFromRecordKey(chain string, key []byte) (uint64, bool) {
	if len(key) != 1+len(chain)+1+8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(key[len(key)-8:]), true
}

// Head is the last durable record of a chain. The zero Head (Seq 0,
// GenesisPrevHash) is the head of an empty chain.
type Head struct {
	Seq  uint64
	Hash Hash
}

func encodeHead(h Head) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+HashSize), h.Seq)
	return append(b, h.Hash[:]...)
}

func decodeHead(b []byte) (Head, error) {
	if len(b) != 8+HashSize {
		return Head{}, fmt.Errorf("%w: head value of %d bytes", ErrMalformedRecord, len(b))
	}
	var h Head
	h.Seq = binary.BigEndian.Uint64(b)
	copy(h.Hash[:], b[8:])
	return h, nil
}
