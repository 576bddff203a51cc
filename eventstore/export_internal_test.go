package eventstore

import "github.com/transparency-dev/merkle/compact"

// StoredIndex exposes the tree key index of a node to external tests.
func StoredIndex(level uint, index uint64) uint64 {
	return storedIndex(compact.NewNodeID(level, index))
}

// TreeFactory exposes the store's compact range factory to external tests.
var TreeFactory = treeFactory
