//go:build custos_notree

package eventstore

// treeOn is false in a build with the custos_notree tag: the sequencer then
// writes records and heads only, no Merkle tree hashes and no signed
// checkpoints, and Open skips the tree and checkpoint checks. It exists for
// one purpose, measuring what the tree and checkpoints cost in the same
// code otherwise (docs/benchmarks.md, "The tree's cost, one build with and
// one without"):
//
//	go build -tags custos_notree -o custos-notree ./cmd/custos
//
// Such a binary gives none of the evidence docs/proofs.md describes; a
// folder it wrote has no tree and no checkpoint, and a release build
// refuses to open it until it is verified and signed once. Never ship it.
const treeOn = false
