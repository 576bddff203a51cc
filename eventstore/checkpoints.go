package eventstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"
	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custos-dev/custos/eventstore/checkpoint"
)

// checkTree checks, at a writable Open, that chain's stored tree has a leaf
// for every record and that its last leaf is the head's hash. A chain
// without a tree (a store from before trees) gets one built from its
// records.
func (s *Store) checkTree(chain string, head Head) error {
	if head.Seq == 0 {
		return nil
	}
	leaf := TreeKey(chain, storedIndex(compact.NewNodeID(0, head.Seq-1)))
	v, closer, err := s.db.Get(leaf)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		return s.buildTree(chain, head)
	case err != nil:
		return fmt.Errorf("eventstore: read tree of %s: %w", chain, err)
	}
	defer closer.Close()
	if !bytes.Equal(v, head.Hash[:]) {
		return fmt.Errorf("%w: chain %s leaf %d is %x, head hash is %x", ErrTreeMismatch, chain, head.Seq-1, v, head.Hash)
	}
	return nil
}

// buildTree writes chain's tree from its records, in synced batches.
func (s *Store) buildTree(chain string, head Head) error {
	s.opts.Logger.Warn("building the merkle tree of a chain that has none (once, for stores from before trees)", "chain", chain, "records", head.Seq)
	tree := treeFactory.NewEmptyRange(0)
	b := s.db.NewBatch()
	var setErr error
	visit := func(id compact.NodeID, hash []byte) {
		if setErr == nil {
			setErr = b.Set(TreeKey(chain, storedIndex(id)), hash, nil)
		}
	}
	flush := func() error {
		err := b.Commit(pebble.Sync)
		_ = b.Close()
		b = s.db.NewBatch()
		return err
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: RecordKey(chain, 1), UpperBound: RecordKey(chain, head.Seq+1)})
	if err != nil {
		return fmt.Errorf("eventstore: build tree of %s: %w", chain, err)
	}
	defer it.Close()
	for valid := it.First(); valid; valid = it.Next() {
		v, err := ParseStored(it.Value())
		if err != nil {
			return fmt.Errorf("eventstore: build tree of %s: %w", chain, err)
		}
		if v.Seq != tree.End()+1 {
			return fmt.Errorf("%w: chain %s record %d follows %d", ErrTreeMismatch, chain, v.Seq, tree.End())
		}
		// compact.Range keeps the slice it is given, and v.Hash points
		// into the iterator's buffer, which the next step reuses.
		if err := tree.Append(bytes.Clone(v.Hash), visit); err != nil {
			return fmt.Errorf("eventstore: build tree of %s: %w", chain, err)
		}
		if setErr != nil {
			return fmt.Errorf("eventstore: build tree of %s: %w", chain, setErr)
		}
		if tree.End()%65536 == 0 {
			if err := flush(); err != nil {
				return fmt.Errorf("eventstore: build tree of %s: %w", chain, err)
			}
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("eventstore: build tree of %s: %w", chain, err)
	}
	if tree.End() != head.Seq {
		return fmt.Errorf("%w: chain %s has %d records, head is %d", ErrTreeMismatch, chain, tree.End(), head.Seq)
	}
	if err := flush(); err != nil {
		return fmt.Errorf("eventstore: build tree of %s: %w", chain, err)
	}
	_ = b.Close()
	return nil
}

// chainKey is the signer and verifier of one chain's checkpoints.
type chainKey struct {
	signer   *checkpoint.Signer
	verifier *checkpoint.Verifier
}

// chainKey returns chain's key, Options.Signer.ForChain(chain), derived
// once per chain and cached. The store must have a Signer.
func (s *Store) chainKey(chain string) (*chainKey, error) {
	if k, ok := s.keys.Load(chain); ok {
		return k.(*chainKey), nil
	}
	signer, err := s.opts.Signer.ForChain(chain)
	if err != nil {
		return nil, fmt.Errorf("eventstore: signing key of chain %s: %w", chain, err)
	}
	v, err := checkpoint.NewVerifier(signer.VerifierKey())
	if err != nil {
		return nil, fmt.Errorf("eventstore: verifier of chain %s: %w", chain, err)
	}
	k, _ := s.keys.LoadOrStore(chain, &chainKey{signer: signer, verifier: v})
	return k.(*chainKey), nil
}

// ChainVerifierKey returns the note verifier key that chain's checkpoints
// verify with: the deployment key's for chains default and system, the
// chain's own for every other (checkpoint.Signer.ForChain). It fails
// without a Signer. Safe for concurrent use.
func (s *Store) ChainVerifierKey(chain string) (string, error) {
	if s.opts.Signer == nil {
		return "", fmt.Errorf("eventstore: chain %s: the store has no signing key", chain)
	}
	k, err := s.chainKey(chain)
	if err != nil {
		return "", err
	}
	return k.signer.VerifierKey(), nil
}

// checkCheckpoints checks, at a writable Open with a Signer, every chain
// that has a head or a checkpoint against its latest checkpoint: signed by
// this chain's key, covering exactly the head, with the stored tree's
// root.
func (s *Store) checkCheckpoints() error {
	if s.opts.Signer == nil {
		return nil
	}
	chains := map[string]bool{}
	for _, kind := range []byte{kindHead, kindCheckpoint} {
		if err := s.chainsOf(kind, chains); err != nil {
			return err
		}
	}
	for chain := range chains {
		k, err := s.chainKey(chain)
		if err != nil {
			return err
		}
		if err := s.checkCheckpoint(k.verifier, chain); err != nil {
			return err
		}
	}
	return nil
}

// chainsOf adds the chains that have keys of kind to chains.
func (s *Store) chainsOf(kind byte, chains map[string]bool) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kind}, UpperBound: []byte{kind + 1}})
	if err != nil {
		return fmt.Errorf("eventstore: scan chains: %w", err)
	}
	defer it.Close()
	for valid := it.First(); valid; {
		key := it.Key()
		if kind == kindHead {
			chains[string(key[1:])] = true
			valid = it.Next()
			continue
		}
		end := bytes.IndexByte(key[1:], 0x00)
		if end < 0 {
			return fmt.Errorf("%w: unexpected key %x", ErrMalformedRecord, key)
		}
		chain := string(key[1 : 1+end])
		chains[chain] = true
		valid = it.SeekGE(append(append([]byte{kind}, chain...), 0x01))
	}
	return it.Error()
}

func (s *Store) checkCheckpoint(v *checkpoint.Verifier, chain string) error {
	head, err := s.storedHead(chain)
	if err != nil {
		return err
	}
	size, msg, err := s.latestCheckpoint(chain)
	if err != nil {
		return err
	}
	if msg == nil {
		if head.Seq == 0 {
			return nil
		}
		if !s.opts.SignExisting {
			return fmt.Errorf("%w: chain %s has %d records and no checkpoint at all (a store from before checkpoints, or they were deleted; verify it, then sign it once with SignExisting)", ErrNotCovered, chain, head.Seq)
		}
		return s.signExisting(chain, head)
	}
	cp, err := v.Open(msg, chain)
	if err != nil {
		return fmt.Errorf("%w: chain %s checkpoint %d: %w", ErrCheckpointMismatch, chain, size, err)
	}
	switch {
	case cp.Size != size:
		return fmt.Errorf("%w: chain %s checkpoint stored as size %d says size %d", ErrCheckpointMismatch, chain, size, cp.Size)
	case cp.Size < head.Seq:
		return fmt.Errorf("%w: chain %s records %d to %d (appended without the signing key?); the latest checkpoint covers %d", ErrNotCovered, chain, cp.Size+1, head.Seq, cp.Size)
	case cp.Size > head.Seq:
		return fmt.Errorf("%w: chain %s has %d records, its checkpoint signs %d (truncated)", ErrCheckpointMismatch, chain, head.Seq, cp.Size)
	}
	root, err := tlog.TreeHash(int64(cp.Size), hashReader{db: s.db, chain: chain})
	if err != nil {
		return fmt.Errorf("%w: chain %s: %w", ErrCheckpointMismatch, chain, err)
	}
	if root != cp.Root {
		return fmt.Errorf("%w: chain %s tree root at %d is %x, the checkpoint signs %x (rewritten or forked)", ErrCheckpointMismatch, chain, cp.Size, root[:], cp.Root[:])
	}
	return nil
}

// signExisting writes the checkpoint of chain's current tree.
func (s *Store) signExisting(chain string, head Head) error {
	root, err := tlog.TreeHash(int64(head.Seq), hashReader{db: s.db, chain: chain})
	if err != nil {
		return fmt.Errorf("eventstore: sign existing chain %s: %w", chain, err)
	}
	msg, err := s.signCheckpoint(chain, TreeHead{Size: head.Seq, Root: Hash(root)})
	if err != nil {
		return err
	}
	if err := s.db.Set(CheckpointKey(chain, head.Seq), msg, pebble.Sync); err != nil {
		return fmt.Errorf("eventstore: sign existing chain %s: %w", chain, err)
	}
	s.opts.Logger.Warn("signed the existing records of a chain that had no checkpoint", "chain", chain, "size", head.Seq)
	return nil
}

// storedHead returns chain's head as stored (zero if none).
func (s *Store) storedHead(chain string) (Head, error) {
	v, closer, err := s.db.Get(HeadKey(chain))
	if errors.Is(err, pebble.ErrNotFound) {
		return Head{}, nil
	}
	if err != nil {
		return Head{}, fmt.Errorf("eventstore: read head of %s: %w", chain, err)
	}
	defer closer.Close()
	return decodeHead(v)
}

// signCheckpoint signs th with chain's key. The origin is always
// Origin(deployment key name, chain), which is also the chain key's name.
func (s *Store) signCheckpoint(chain string, th TreeHead) ([]byte, error) {
	k, err := s.chainKey(chain)
	if err != nil {
		return nil, err
	}
	return k.signer.Sign(checkpoint.Checkpoint{
		Origin: checkpoint.Origin(s.opts.Signer.Name(), chain),
		Size:   th.Size,
		Root:   th.Root,
	})
}

// latestCheckpoint returns the size and note of chain's last stored
// checkpoint, or 0 and nil.
func (s *Store) latestCheckpoint(chain string) (uint64, []byte, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: CheckpointKey(chain, 0), UpperBound: append(CheckpointKey(chain, math.MaxUint64), 0)})
	if err != nil {
		return 0, nil, fmt.Errorf("eventstore: checkpoints of %s: %w", chain, err)
	}
	defer it.Close()
	if !it.Last() {
		return 0, nil, it.Error()
	}
	return binary.BigEndian.Uint64(it.Key()[len(it.Key())-8:]), bytes.Clone(it.Value()), nil
}

// SignedCheckpoint returns chain's latest durable checkpoint, a signed note
// in C2SP tlog-checkpoint form (see package checkpoint), or
// ErrNoCheckpoint. It never returns a checkpoint whose batch is not
// durable.
func (s *Store) SignedCheckpoint(ctx context.Context, chain string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.beginRead(); err != nil {
		return nil, err
	}
	defer s.readers.RUnlock()
	s.mu.Lock()
	w := s.writers[chain]
	s.mu.Unlock()
	var msg []byte
	if w != nil {
		w.mu.Lock()
		msg = w.checkpoint
		w.mu.Unlock()
	} else {
		var err error
		if _, msg, err = s.latestCheckpoint(chain); err != nil {
			return nil, err
		}
	}
	if msg == nil {
		return nil, fmt.Errorf("%w: chain %s", ErrNoCheckpoint, chain)
	}
	return bytes.Clone(msg), nil
}

// Checkpoints calls fn with every kept checkpoint of chain, by increasing
// size, up to the latest durable one.
func (s *Store) Checkpoints(ctx context.Context, chain string, fn func(size uint64, note []byte) error) error {
	if err := s.beginRead(); err != nil {
		return err
	}
	defer s.readers.RUnlock()
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: CheckpointKey(chain, 0), UpperBound: append(CheckpointKey(chain, math.MaxUint64), 0)})
	if err != nil {
		return fmt.Errorf("eventstore: checkpoints of %s: %w", chain, err)
	}
	defer it.Close()
	limit := s.visibleTo(chain)
	for valid := it.First(); valid; valid = it.Next() {
		size := binary.BigEndian.Uint64(it.Key()[len(it.Key())-8:])
		if size > limit {
			break
		}
		if err := fn(size, it.Value()); err != nil {
			return err
		}
	}
	return it.Error()
}

// checkIngested checks note, the checkpoint that came with ingested
// records, against th, the tree they end, and returns it to be stored.
func (s *Store) checkIngested(chain string, note []byte, th TreeHead) ([]byte, error) {
	if note == nil {
		return nil, fmt.Errorf("%w: chain %s records through %d came without a checkpoint", ErrNotCovered, chain, th.Size)
	}
	k, err := s.chainKey(chain)
	if err != nil {
		return nil, err
	}
	cp, err := k.verifier.Open(note, chain)
	if err != nil {
		return nil, fmt.Errorf("%w: chain %s checkpoint of ingested records: %w", ErrCheckpointMismatch, chain, err)
	}
	if cp.Size != th.Size || cp.Root != th.Root {
		return nil, fmt.Errorf("%w: chain %s ingested checkpoint signs size %d root %x, the records end tree %d root %x", ErrCheckpointMismatch, chain, cp.Size, cp.Root[:4], th.Size, th.Root[:4])
	}
	return bytes.Clone(note), nil
}
