//go:build !custos_notree

package eventstore

// treeOn is false only in a build with the custos_notree tag (see
// tree_off.go); every release build extends the tree and signs.
const treeOn = true
