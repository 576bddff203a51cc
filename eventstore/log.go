package eventstore

import "context"

// Log is the contract of custos's hash-chained log: what the write side,
// the read side and verify may rely on, whatever holds the records (the
// Pebble Store today). Every implementation must pass the suite in
// eventstore/eventstoretest (eventstoretest.TestLog).
//
// # Chains and records
//
// A Log holds any number of chains, named as ValidateChain allows. Each
// chain is a contiguous, 1-based sequence of Records: record n+1's PrevHash
// is record n's Hash (GenesisPrevHash for record 1), every Hash is
// Record.ComputeHash, Time never decreases along a chain, and ID is a
// 26-character ULID. The Log never looks inside a Payload and stores it
// byte for byte as given.
//
// # Durability
//
// A record is durable once it survives a crash of the process and of the
// machine (fsync, or a quorum that did). Enqueue only sequences; the records
// of a Pending are durable once Pending.Wait returns nil (Append returns
// nil). A Pending that completes with an error may or may not have been
// written; after ErrStoreFailed the Log accepts no further appends until it
// is reopened, and reopening shows exactly the records that are on disk.
//
// # Reads
//
// Head, Get, Scan and Records show only durable records, in seq order: a
// reader never sees a record that a crash could still take away. An empty
// chain has the zero Head; Get of a seq past the durable head, or of seq
// 0, returns ErrNotFound.
//
// # Concurrency and lifetime
//
// Every method is safe for concurrent use. Appends to one chain are
// sequenced in call order: calls that the caller serializes get increasing
// seqs in that order, and the records of one call are contiguous. The
// opener owns the Log and calls Close once its users are done (HTTP server
// first, then Ledger and projections, then the Log). Close commits what is
// queued, answers every waiting Pending and is safe to call twice; after it
// every method returns ErrClosed.
//
// # Merkle tree and checkpoints
//
// Each chain is also an RFC 6962 Merkle tree: leaf i is the Hash of record
// i+1 (record hashes already are RFC 6962 leaf hashes), interior nodes are
// SHA-256(0x01 || left || right), and the tree of size n covers records 1
// to n. The tree grows in the records' own commits, so the tree over the
// durable records is always there, with nothing to replay after a restart.
// TreeHead, TreeRoot, InclusionProof and ConsistencyProof answer for sizes
// up to the durable head only (ErrBadTreeSize past it); proofs are in the
// form x/mod's sumdb/tlog (CheckRecord, CheckTree) and
// transparency-dev/merkle's proof package verify, leaf to root.
//
// A Log given a signer writes, in the batch of every commit, the signed
// checkpoint (package checkpoint) of the chain's new tree size, so that
// every durable record is covered by a durable signature; SignedCheckpoint
// shows the latest one only once its batch is durable, and never goes back
// to a smaller size while the Log is open. Without a signer it returns
// ErrNoCheckpoint.
//
// # Errors
//
// Match with errors.Is: ErrEmptyAppend (no drafts), ErrReadOnly,
// ErrStoreFailed, ErrClosed, ErrNotFound, ErrMalformedRecord (a stored
// record that does not parse), ErrBadTreeSize, ErrNoCheckpoint,
// ErrTreeMismatch, ErrNotCovered, ErrCheckpointMismatch (the last three
// from opening a store whose tree or checkpoints contradict its records),
// and a ValidateChain error for a bad chain
// name. A context that ends returns ctx.Err().
type Log interface {
	// Enqueue sequences drafts as the next records of chain and returns
	// them as a Pending (seq, id, time and hashes assigned) without waiting
	// for durability. It may block while the implementation's queue is full,
	// until ctx ends.
	Enqueue(ctx context.Context, chain string, drafts ...Draft) (*Pending, error)
	// Append is Enqueue followed by Pending.Wait. If ctx ends first it
	// returns ctx.Err() and the records may or may not be committed.
	Append(ctx context.Context, chain string, drafts ...Draft) ([]Record, error)
	// Head returns the seq and hash of chain's last durable record.
	Head(chain string) (Head, error)
	// Get returns chain's durable record seq, or ErrNotFound.
	Get(ctx context.Context, chain string, seq uint64) (Record, error)
	// Scan calls fn with the seq and the stored bytes (see ParseStored) of
	// every durable record of chain with from <= seq <= to, in order.
	// stored is valid only during the call. An error from fn stops the scan
	// and is returned as is.
	Scan(ctx context.Context, chain string, from, to uint64, fn func(seq uint64, stored []byte) error) error
	// Records is Scan with each record parsed and copied; to 0 means no
	// upper bound.
	Records(ctx context.Context, chain string, from, to uint64, fn func(Record) error) error
	// TreeHead returns the size (the durable head's seq) and root of
	// chain's tree; an empty chain has size 0 and EmptyTreeRoot.
	TreeHead(ctx context.Context, chain string) (TreeHead, error)
	// TreeRoot returns the root of chain's tree of size records.
	TreeRoot(ctx context.Context, chain string, size uint64) (Hash, error)
	// InclusionProof returns the audit path of leaf index (seq - 1) in the
	// tree of size; it needs index < size.
	InclusionProof(ctx context.Context, chain string, index, size uint64) ([]Hash, error)
	// ConsistencyProof proves that the tree of size from is a prefix of the
	// tree of size to; it needs 0 < from <= to.
	ConsistencyProof(ctx context.Context, chain string, from, to uint64) ([]Hash, error)
	// SignedCheckpoint returns chain's latest durable signed checkpoint.
	SignedCheckpoint(ctx context.Context, chain string) ([]byte, error)
	// Failed returns the error that made the Log refuse appends, or nil.
	Failed() error
	// Close stops the Log; see the type's doc.
	Close() error
}

var _ Log = (*Store)(nil)

// LogStore is a Log with a derived-data database beside it: what the
// projections need to follow a chain and keep their indexes and snapshots
// (audit index, state snapshots) out of the log's WAL. Derived data is
// local to the process's machine whatever holds the log, and losing it
// only costs a rebuild from the log. The Pebble Store is one; a store whose
// log lives elsewhere pairs that Log with a local derived database.
type LogStore interface {
	Log
	// Aux returns the derived-data namespace ns (see Aux).
	Aux(ns string) (*Aux, error)
	// DerivedFailed returns ErrDerivedFailed (wrapped) once the derived
	// database failed, or nil; the Log keeps working meanwhile.
	DerivedFailed() error
	// ReadOnly reports whether the store was opened read-only: no appends,
	// and derived data is read but never written.
	ReadOnly() bool
}

var _ LogStore = (*Store)(nil)
