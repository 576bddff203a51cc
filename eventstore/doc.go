// Package eventstore stores hash-chained records in Pebble and never looks
// inside their payloads.
//
// A Store holds any number of chains (one per tenant; "default" until tenants
// exist). Each chain is a contiguous, 1-based sequence of Records. Every Record
// is linked to its predecessor by a SHA-256 hash over a byte-exact encoding of
// all its fields (see Encode, LeafHash and docs/hash-spec.md). The payload is
// stored exactly as it was hashed; nothing re-marshals it.
//
// # Writes
//
// Writes go through one sequencer per chain. Enqueue assigns sequence numbers,
// ids and hashes in call order; a single goroutine per chain then commits
// everything queued in one Pebble batch with pebble.Sync (group commit), so
// many concurrent writers share one fsync. Commit order equals seq order. A
// Pending completes only once its records are durable.
//
// The store is fail-stop: if a commit fails, every waiting caller gets the
// error and every later Enqueue returns ErrStoreFailed until the store is
// reopened. A failed fsync is never retried.
//
// # Reads
//
// Readers (Head, Get, Scan, Records) see only durable records. Scan hands out
// views into Pebble's buffers that are valid only during the callback; Records
// and Get copy.
//
// # Concurrency and lifetime
//
// A Store is safe for concurrent use. Close stops accepting writes, commits
// what is queued, stops publishing and closes Pebble; it is safe to call twice.
// After a successful commit, the new durable head (and, when
// Options.RecordTopic is set, every record) is published through the
// watermill Publisher given in Options, if any. Delivery is a wake-up, not
// the source of truth: a subscriber that misses messages catches up by
// reading the store.
package eventstore
