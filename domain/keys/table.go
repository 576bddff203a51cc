package keys

import "slices"

// pageBits is log2 of pageLen.
const pageBits = 7

// pageLen is the number of entries of a page of a table (12.8 KB).
const pageLen = 1 << pageBits

// page is a run of pageLen entries of a table.
type page [pageLen]entry

// table is the State's entries, by index in order of creation: an
// append-only array in pages, copy-on-write by page, so that share costs
// O(pages/64) and a write after it copies the one page it changes. Its
// pages hold no pointers, so the garbage collector does not trace them,
// and entries sit densely, not at a map's load factor. An index, once
// given out by add, names the same key for good.
//
// Concurrency is cow.Map's: reads may run concurrently with each other but
// not with add, set or share; a copy made by share is independent of its
// original. The zero table is empty and ready to use.
type table struct {
	pages []*page
	n     int
	// owned has bit i set when pages[i] belongs to this table alone and
	// may be written in place.
	owned []uint64
	// listOwned is set when pages was copied since the last share, so
	// that its elements may be replaced. Appending needs no copy: a
	// copy's list has no spare capacity, so it never sees the append.
	listOwned bool
}

// at returns entry i, to read only.
func (t *table) at(i uint32) *entry { return &t.pages[i>>pageBits][i&(pageLen-1)] }

// set replaces entry i with e, first copying its page if it is shared.
func (t *table) set(i uint32, e entry) {
	p := int(i >> pageBits)
	word, bit := p/64, uint64(1)<<(p%64)
	if t.owned[word]&bit == 0 {
		if !t.listOwned {
			t.pages = slices.Clone(t.pages)
			t.listOwned = true
		}
		cp := *t.pages[p]
		t.pages[p] = &cp
		t.owned[word] |= bit
	}
	t.pages[p][i&(pageLen-1)] = e
}

// add appends e and returns its index.
func (t *table) add(e entry) uint32 {
	if t.n == len(t.pages)*pageLen {
		t.pages = append(t.pages, new(page))
		p := len(t.pages) - 1
		if p/64 == len(t.owned) {
			t.owned = append(t.owned, 0)
		}
		t.owned[p/64] |= 1 << (p % 64)
	}
	i := uint32(t.n)
	t.n++
	t.set(i, e)
	return i
}

// share returns a copy of t that shares every page until one of the two
// writes to it. It writes to t (it marks t's pages shared), so it must not
// run concurrently with any other use of t.
func (t *table) share() table {
	clear(t.owned)
	t.listOwned = false
	return table{pages: slices.Clip(t.pages), n: t.n, owned: make([]uint64, len(t.owned))}
}

// clone returns a copy of t that shares nothing with it and equals what
// adding t's entries to an empty table gives.
func (t *table) clone() table {
	var c table
	for i := range uint32(t.n) {
		c.add(*t.at(i))
	}
	return c
}
