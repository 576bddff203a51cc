package eventstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"
)

// Errors of the tree and its checkpoints. Match them with errors.Is.
var (
	// ErrNoCheckpoint means a chain has no signed checkpoint (the store has
	// no signer, or nothing was appended since it got one).
	ErrNoCheckpoint = errors.New("eventstore: no checkpoint")
	// ErrBadTreeSize means a proof or root was asked for a tree size the
	// chain does not have durably, or for indexes that do not fit it.
	ErrBadTreeSize = errors.New("eventstore: no such tree size")
	// ErrTreeMismatch means the stored Merkle tree does not match the
	// chain's records or head.
	ErrTreeMismatch = errors.New("eventstore: merkle tree does not match the chain")
	// ErrNotCovered means a chain holds records that no stored signed
	// checkpoint covers: appended without the signing key, or the
	// checkpoints were deleted.
	ErrNotCovered = errors.New("eventstore: records not covered by a signed checkpoint")
	// ErrCheckpointMismatch means the latest stored checkpoint does not
	// verify, or names a tree the chain does not have (truncated, rewritten
	// or forked).
	ErrCheckpointMismatch = errors.New("eventstore: chain contradicts its signed checkpoint")
)

// TreeHead is the size and RFC 6962 root of a chain's Merkle tree.
type TreeHead struct {
	Size uint64
	Root Hash
}

// EmptyTreeRoot is the root of a tree without leaves: SHA-256 of nothing
// (RFC 6962 section 2.1).
func EmptyTreeRoot() Hash { return sha256.Sum256(nil) }

// treeFactory builds compact ranges with RFC 6962 interior hashing
// (SHA-256(0x01 || left || right)). Leaves are record hashes as they are.
var treeFactory = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// storedIndex is tlog's stored hash index of the complete subtree at level
// covering leaves [index<<level, (index+1)<<level).
func storedIndex(id compact.NodeID) uint64 {
	return uint64(tlog.StoredHashIndex(int(id.Level), int64(id.Index)))
}

// TreeKey returns the Pebble key of chain's stored tree hash with tlog
// stored hash index idx (see tlog.StoredHashIndex). Exported for tools and
// tamper tests.
func TreeKey(chain string, idx uint64) []byte {
	return appendTreeKey(make([]byte, 0, 1+len(chain)+1+8), chain, idx)
}

func appendTreeKey(dst []byte, chain string, idx uint64) []byte {
	dst = append(dst, kindTree)
	dst = append(dst, chain...)
	dst = append(dst, 0x00)
	return binary.BigEndian.AppendUint64(dst, idx)
}

// CheckpointKey returns the Pebble key of chain's signed checkpoint of
// tree size size.
func CheckpointKey(chain string, size uint64) []byte {
	k := make([]byte, 0, 1+len(chain)+1+8)
	k = append(k, kindCheckpoint)
	k = append(k, chain...)
	k = append(k, 0x00)
	return binary.BigEndian.AppendUint64(k, size)
}

// hashReader reads chain's stored tree hashes from db for x/mod's tlog.
type hashReader struct {
	db    pebble.Reader
	chain string
}

func (r hashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	key := make([]byte, 0, 1+len(r.chain)+1+8)
	for i, idx := range indexes {
		key = appendTreeKey(key[:0], r.chain, uint64(idx))
		v, closer, err := r.db.Get(key)
		if errors.Is(err, pebble.ErrNotFound) {
			return nil, fmt.Errorf("%w: chain %s has no stored tree hash %d", ErrTreeMismatch, r.chain, idx)
		}
		if err != nil {
			return nil, fmt.Errorf("eventstore: read tree hash %d of %s: %w", idx, r.chain, err)
		}
		if len(v) != HashSize {
			_ = closer.Close()
			return nil, fmt.Errorf("%w: chain %s tree hash %d has %d bytes", ErrTreeMismatch, r.chain, idx, len(v))
		}
		copy(out[i][:], v)
		_ = closer.Close()
	}
	return out, nil
}

// loadRange returns the compact range [0, size) of chain from the stored
// hashes of its perfect subtrees (one read per set bit of size).
func loadRange(db pebble.Reader, chain string, size uint64) (*compact.Range, error) {
	ids := compact.RangeNodes(0, size, nil)
	idx := make([]int64, len(ids))
	for i, id := range ids {
		idx[i] = int64(storedIndex(id))
	}
	hs, err := hashReader{db: db, chain: chain}.ReadHashes(idx)
	if err != nil {
		return nil, err
	}
	hashes := make([][]byte, len(hs))
	for i := range hs {
		hashes[i] = hs[i][:]
	}
	return treeFactory.NewRange(0, size, hashes)
}

// rangeRoot returns the root of a compact range starting at 0.
func rangeRoot(r *compact.Range) (Hash, error) {
	if r.End() == 0 {
		return EmptyTreeRoot(), nil
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		return Hash{}, fmt.Errorf("eventstore: tree root: %w", err)
	}
	return Hash(root), nil
}

// treeSize returns the size a reader may ask about: the durable head.
func (s *Store) durableSize(chain string) (uint64, error) {
	h, err := s.Head(chain)
	return h.Seq, err
}

// TreeHead returns the size and root of chain's Merkle tree over its
// durable records.
func (s *Store) TreeHead(ctx context.Context, chain string) (TreeHead, error) {
	size, err := s.durableSize(chain)
	if err != nil {
		return TreeHead{}, err
	}
	root, err := s.TreeRoot(ctx, chain, size)
	return TreeHead{Size: size, Root: root}, err
}

// TreeRoot returns the root of chain's tree at size (at most the durable
// head), from at most 1 + log2(size) stored hashes.
func (s *Store) TreeRoot(ctx context.Context, chain string, size uint64) (Hash, error) {
	if err := s.checkSize(ctx, chain, size); err != nil {
		return Hash{}, err
	}
	if err := s.beginRead(); err != nil {
		return Hash{}, err
	}
	defer s.readers.RUnlock()
	h, err := tlog.TreeHash(int64(size), s.hashes(chain))
	if err != nil {
		return Hash{}, fmt.Errorf("eventstore: root of %s at %d: %w", chain, size, err)
	}
	return Hash(h), nil
}

// checkSize fails with ErrBadTreeSize unless 0 < size <= durable head (0
// too for TreeRoot of an empty chain).
func (s *Store) checkSize(ctx context.Context, chain string, size uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	durable, err := s.durableSize(chain)
	if err != nil {
		return err
	}
	if size > durable || size > math.MaxInt64 {
		return fmt.Errorf("%w: chain %s size %d, durable size %d", ErrBadTreeSize, chain, size, durable)
	}
	return nil
}

// InclusionProof returns the RFC 6962 audit path of leaf index (seq - 1) in
// chain's tree of size size: the sibling hashes from the leaf up, as
// x/mod's tlog.ProveRecord and transparency-dev/merkle's proof package
// define them. It needs index < size <= durable head.
func (s *Store) InclusionProof(ctx context.Context, chain string, index, size uint64) ([]Hash, error) {
	if err := s.checkSize(ctx, chain, size); err != nil {
		return nil, err
	}
	if index >= size {
		return nil, fmt.Errorf("%w: leaf %d is not in a tree of size %d", ErrBadTreeSize, index, size)
	}
	if err := s.beginRead(); err != nil {
		return nil, err
	}
	defer s.readers.RUnlock()
	p, err := tlog.ProveRecord(int64(size), int64(index), s.hashes(chain))
	if err != nil {
		return nil, fmt.Errorf("eventstore: inclusion proof of %d in %s size %d: %w", index, chain, size, err)
	}
	return toHashes(p), nil
}

// ConsistencyProof returns the RFC 6962 consistency proof that chain's tree
// of size from is a prefix of its tree of size to. It needs
// 0 < from <= to <= durable head; from == to gives an empty proof.
func (s *Store) ConsistencyProof(ctx context.Context, chain string, from, to uint64) ([]Hash, error) {
	if err := s.checkSize(ctx, chain, to); err != nil {
		return nil, err
	}
	if from == 0 || from > to {
		return nil, fmt.Errorf("%w: consistency from %d to %d (want 0 < from <= to)", ErrBadTreeSize, from, to)
	}
	if err := s.beginRead(); err != nil {
		return nil, err
	}
	defer s.readers.RUnlock()
	p, err := tlog.ProveTree(int64(to), int64(from), s.hashes(chain))
	if err != nil {
		return nil, fmt.Errorf("eventstore: consistency proof of %s from %d to %d: %w", chain, from, to, err)
	}
	return toHashes(p), nil
}

func toHashes[H ~[]tlog.Hash](p H) []Hash {
	out := make([]Hash, len(p))
	for i := range p {
		out[i] = Hash(p[i])
	}
	return out
}
