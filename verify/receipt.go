package verify

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/checkpoint"
)

// ErrReceipt means a receipt does not prove what it claims: malformed, its
// checkpoint not signed by the key or for another origin, its record
// malformed or at another index, or its inclusion proof does not bind the
// record's hash to the signed root. Match with errors.Is; the message says
// which.
var ErrReceipt = errors.New("verify: receipt rejected")

// ReceiptResult is what a receipt proves once Receipt accepts it: the
// record (from the receipt's extra data) and the checkpoint it is in.
type ReceiptResult struct {
	// Origin, TreeSize and Root (base64) are the signed checkpoint's.
	Origin   string `json:"origin"`
	TreeSize uint64 `json:"tree_size"`
	Root     string `json:"root"`
	// Index is the leaf index (Seq - 1).
	Index uint64 `json:"index"`
	// Chain, Seq, ID, Time, Type and Actor are the record's envelope;
	// Hash (hex) is SHA-256(0x00 || encoding), the leaf.
	Chain string    `json:"chain"`
	Seq   uint64    `json:"seq"`
	ID    string    `json:"id"`
	Time  time.Time `json:"time"`
	Type  string    `json:"type"`
	Actor string    `json:"actor"`
	Hash  string    `json:"hash"`
	// Payload is the record's payload as stored (JSON for custos events).
	Payload string `json:"payload"`
}

// Receipt checks a receipt (C2SP tlog-proof, see checkpoint.Receipt and
// docs/proofs.md) offline against the verifier key v: the checkpoint is a
// note signed by v whose origin is v's name and the record's chain, the
// extra data is a well-formed record encoding of seq index+1 in that chain,
// and the inclusion proof proves SHA-256(0x00 || extra) is leaf index of
// the signed tree. Every failure wraps ErrReceipt.
func Receipt(text []byte, v *checkpoint.Verifier) (ReceiptResult, error) {
	r, err := checkpoint.ParseReceipt(text)
	if err != nil {
		return ReceiptResult{}, fmt.Errorf("%w: %w", ErrReceipt, err)
	}
	leaf := eventstore.LeafHash(r.Extra)
	rec, err := eventstore.ParseStored(append(append([]byte(nil), r.Extra...), leaf[:]...))
	if err != nil {
		return ReceiptResult{}, fmt.Errorf("%w: extra data is not a record encoding: %w", ErrReceipt, err)
	}
	cp, err := v.Open(r.Checkpoint, string(rec.Chain))
	if err != nil {
		return ReceiptResult{}, fmt.Errorf("%w: checkpoint: %w", ErrReceipt, err)
	}
	switch {
	case rec.Seq != r.Index+1:
		return ReceiptResult{}, fmt.Errorf("%w: index %d, but the record is seq %d (leaf %d)", ErrReceipt, r.Index, rec.Seq, rec.Seq-1)
	case r.Index >= cp.Size:
		return ReceiptResult{}, fmt.Errorf("%w: index %d is not in the checkpoint's tree of size %d", ErrReceipt, r.Index, cp.Size)
	}
	proof := make(tlog.RecordProof, len(r.Proof))
	for i := range r.Proof {
		proof[i] = tlog.Hash(r.Proof[i])
	}
	if err := tlog.CheckRecord(proof, int64(cp.Size), tlog.Hash(cp.Root), int64(r.Index), tlog.Hash(leaf)); err != nil {
		return ReceiptResult{}, fmt.Errorf("%w: record %d is not leaf %d of the signed tree of size %d: %w", ErrReceipt, rec.Seq, r.Index, cp.Size, err)
	}
	return ReceiptResult{
		Origin: cp.Origin, TreeSize: cp.Size, Root: base64.StdEncoding.EncodeToString(cp.Root[:]),
		Index: r.Index, Chain: string(rec.Chain), Seq: rec.Seq, ID: string(rec.ID),
		Time: time.Unix(0, rec.TimeNanos).UTC(), Type: string(rec.Type), Actor: string(rec.Actor),
		Hash: hex.EncodeToString(leaf[:]), Payload: string(rec.Payload),
	}, nil
}
