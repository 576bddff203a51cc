package wire

// InclusionProof is the answer of GET /v1/audit/proof/inclusion
// (docs/proofs.md): the RFC 6962 inclusion proof of record Seq (leaf Index
// = Seq - 1) in the tree of size TreeSize, hashes base64 (standard,
// padded), from the leaf's sibling up.
type InclusionProof struct {
	Seq      uint64   `json:"seq"`
	Index    uint64   `json:"index"`
	TreeSize uint64   `json:"tree_size"`
	Hashes   []string `json:"hashes"`
}

// ConsistencyProof is the answer of GET /v1/audit/proof/consistency: the
// RFC 6962 proof that the tree of size From is a prefix of the tree of
// size To, hashes base64.
type ConsistencyProof struct {
	From   uint64   `json:"from"`
	To     uint64   `json:"to"`
	Hashes []string `json:"hashes"`
}
