package verify

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/custos-dev/custos/eventstore/checkpoint"
)

// Problem kinds found against a checkpoint, stable wire values.
const (
	// KindCheckpointTruncated: the chain has fewer records than the
	// checkpoint signs (records were removed from its end).
	KindCheckpointTruncated = "checkpoint_truncated"
	// KindCheckpointMismatch: the records up to the checkpoint's size do
	// not hash to its root (a record at or before that size was rewritten,
	// or the log forked), or the checkpoint is for another chain.
	KindCheckpointMismatch = "checkpoint_mismatch"
)

// CheckpointResult says what a check against a signed checkpoint found.
type CheckpointResult struct {
	// Origin, Size and Root (base64) are the checkpoint's.
	Origin string `json:"origin"`
	Size   uint64 `json:"size"`
	Root   string `json:"root"`
	// RecomputedRoot is the root of the chain's first Size records,
	// recomputed from them, or "" when the chain is shorter or broke
	// before.
	RecomputedRoot string `json:"recomputed_root"`
	// Contained is true when the chain holds the checkpointed tree: its
	// first Size records hash to Root. The chain extends it when it also
	// has more records (Report.Total > Size).
	Contained bool `json:"contained"`
}

// WithCheckpoint checks the chain against cp, a checkpoint whose signature
// the caller verified (checkpoint.Verifier.Open): the chain must have at
// least cp.Size records and its first cp.Size must hash to cp.Root, with
// a tree recomputed from the records; its origin must end in "/" + chain.
// An export range that does not start at genesis cannot be checked (Export
// returns an error).
func WithCheckpoint(cp checkpoint.Checkpoint) Option {
	return func(o *options) { o.checkpoint = &cp }
}

// treeCheck recomputes a chain's tree from its records as they pass. A
// treeCheck of a segment (Store checks long chains in segments at once)
// covers the leaves from its begin; join appends a later segment's.
type treeCheck struct {
	cp   checkpoint.Checkpoint
	tree *compact.Range
	root []byte // set once a tree from leaf 0 reaches cp.Size
	err  error
}

var treeFactory = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

func newTreeCheck(cp checkpoint.Checkpoint) *treeCheck { return newTreeCheckFrom(cp, 0) }

// newTreeCheckFrom starts a tree at leaf index begin (seq begin+1).
func newTreeCheckFrom(cp checkpoint.Checkpoint, begin uint64) *treeCheck {
	t := &treeCheck{cp: cp, tree: treeFactory.NewEmptyRange(begin)}
	if cp.Size == 0 {
		t.root = rfc6962.DefaultHasher.EmptyRoot()
	}
	return t
}

// reached reports whether the tree has stopped growing: it holds the
// checkpoint's size (or failed).
func (t *treeCheck) reached() bool {
	return t.root != nil || t.err != nil || t.tree.End() == t.cp.Size
}

// add extends the tree with the next chained record's hash.
func (t *treeCheck) add(h []byte) {
	if t.reached() {
		return
	}
	// The range keeps leaf slices; h is the caller's buffer.
	if t.err = t.tree.Append(bytes.Clone(h), nil); t.err != nil {
		return
	}
	t.rootIfReached()
}

// rootIfReached computes the root once a tree from leaf 0 holds cp.Size.
func (t *treeCheck) rootIfReached() {
	if t.root == nil && t.err == nil && t.tree.Begin() == 0 && t.tree.End() == t.cp.Size {
		t.root, t.err = t.tree.GetRootHash(nil)
	}
}

// join appends the leaves of next, the tree of the segment that follows
// t's (next.tree begins where t's ends, unless t stopped early: then the
// join changes nothing, as a single pass would have stopped there too).
func (t *treeCheck) join(next *treeCheck) {
	if t.reached() || next.tree.Begin() != t.tree.End() {
		return
	}
	if next.err != nil {
		t.err = next.err
		return
	}
	if t.err = t.tree.AppendRange(next.tree, nil); t.err != nil {
		return
	}
	t.rootIfReached()
}

// finish adds the checkpoint's result to r and, if nothing failed before,
// its problem. chain is "" for an empty export checked without an expected
// chain: it names no chain to compare the origin with, and is short of any
// checkpoint but one of size 0 (docs/export-format.md).
func (t *treeCheck) finish(r *Report, chain string) {
	b64 := base64.StdEncoding.EncodeToString
	res := &CheckpointResult{Origin: t.cp.Origin, Size: t.cp.Size, Root: b64(t.cp.Root[:])}
	if t.root != nil {
		res.RecomputedRoot = b64(t.root)
		res.Contained = string(t.root) == string(t.cp.Root[:])
	}
	r.Checkpoint = res
	if r.Detail != nil {
		return
	}
	switch {
	case chain != "" && !strings.HasSuffix(t.cp.Origin, "/"+chain):
		r.Detail = &Problem{Seq: t.cp.Size, Kind: KindCheckpointMismatch, Expected: "origin ending in /" + chain, Got: t.cp.Origin,
			Message: "the checkpoint is for another chain"}
	case t.err != nil:
		r.Detail = &Problem{Seq: t.cp.Size, Kind: KindCheckpointMismatch, Message: fmt.Sprintf("recompute tree: %v", t.err)}
	case t.root == nil:
		r.Detail = &Problem{Seq: t.cp.Size, Kind: KindCheckpointTruncated, Expected: fmt.Sprintf("at least %d records", t.cp.Size), Got: fmt.Sprintf("%d records", t.tree.End()),
			Message: "the chain is shorter than the signed checkpoint (records removed from its end)"}
	case !res.Contained:
		r.Detail = &Problem{Seq: t.cp.Size, Kind: KindCheckpointMismatch, Expected: res.Root, Got: res.RecomputedRoot,
			Message: fmt.Sprintf("records 1 to %d do not hash to the signed root: a record at or before seq %d was rewritten, or the log forked", t.cp.Size, t.cp.Size)}
	}
}
