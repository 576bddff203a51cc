package keys

import (
	"math"
	"slices"
)

// Chunk sizes of an arena: the first chunk is chunkMin bytes and each next
// one twice the last, up to chunkMax, so that a State of a few keys (one
// per tenant) stays small and a State of millions of keys is a few hundred
// large chunks.
const (
	chunkMin = 512
	chunkMax = 1 << 20
)

// arena holds the strings (and key hashes) of a State's keys as bytes in
// append-only chunks, so that an entry refers to them by position (loc,
// str) instead of by pointer: the entries and the chunks hold no Go
// pointers, and the garbage collector does not trace them key by key.
//
// Bytes once written are never written again, and a chunk once appended
// to chunks is never replaced, so arenas may share chunks: a FrozenCopy
// shares its State's chunks (see share) and may be read on another
// goroutine while the State appends beyond what the copy refers to.
//
// The zero arena is empty and ready to use.
type arena struct {
	// chunks are the chunks, each allocated at its full length; bytes
	// from used on in the last one are free. A string never spans two
	// chunks.
	chunks [][]byte
	used   int
	// shared is set when the last chunk may be shared with another
	// arena that appends to it, so that this one must not: its next
	// alloc starts a new chunk.
	shared bool
}

// loc is the position of a byte in an arena.
type loc struct{ chunk, off uint32 }

// str is a string in an arena; the zero str is "".
type str struct {
	loc
	n uint32
}

// alloc returns n bytes of new space, in one chunk, and where they start.
// The caller fills them before anything reads them.
func (a *arena) alloc(n int) (loc, []byte) {
	if n > math.MaxUint32 {
		panic("keys: a key's strings exceed 4 GiB")
	}
	if len(a.chunks) == 0 || a.shared || a.used+n > len(a.chunks[len(a.chunks)-1]) {
		size := chunkMin
		if len(a.chunks) > 0 {
			size = min(chunkMax, max(chunkMin, 2*len(a.chunks[len(a.chunks)-1])))
		}
		// A record larger than a chunk gets a chunk of its own.
		a.chunks = append(a.chunks, make([]byte, max(size, n)))
		a.used, a.shared = 0, false
	}
	i, off := len(a.chunks)-1, a.used
	a.used += n
	return loc{chunk: uint32(i), off: uint32(off)}, a.chunks[i][off:a.used:a.used]
}

// intern copies s into the arena.
func (a *arena) intern(s string) str {
	if s == "" {
		return str{}
	}
	at, b := a.alloc(len(s))
	copy(b, s)
	return str{loc: at, n: uint32(len(s))}
}

// bytes returns the bytes of x. They must not be changed.
func (a *arena) bytes(x str) []byte {
	if x.n == 0 {
		return nil
	}
	end := x.off + x.n
	return a.chunks[x.chunk][x.off:end:end]
}

// string returns a copy of x.
func (a *arena) string(x str) string { return string(a.bytes(x)) }

// is reports whether x is s, without allocating.
func (a *arena) is(x str, s string) bool { return string(a.bytes(x)) == s }

// share returns an arena that reads the same bytes as a and, when it is
// written, appends to chunks of its own: the copy's chunk list has no
// spare capacity, so that appending to it never writes to a's, and its
// last chunk counts as shared.
func (a *arena) share() arena {
	return arena{chunks: slices.Clip(a.chunks), used: a.used, shared: true}
}

// clone returns a deep copy of a: chunks of the same sizes with the same
// bytes, so that a clone equals its original, and nothing shared.
func (a *arena) clone() arena {
	c := arena{chunks: make([][]byte, len(a.chunks)), used: a.used}
	for i, ch := range a.chunks {
		c.chunks[i] = make([]byte, len(ch))
		// Only the used bytes of the last chunk: past them, another arena
		// sharing the chunk may be writing.
		n := len(ch)
		if i == len(a.chunks)-1 {
			n = a.used
		}
		copy(c.chunks[i], ch[:n])
	}
	return c
}
