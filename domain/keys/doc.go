// Package keys is the API-key (credential) domain of custos: key format,
// scopes, the key events, the key projection (State), the pure command
// deciders (Create, CreateSuperadmin, Rotate, Revoke) and the precondition
// of every change a key orders (Authorize). Authentication of a presented key is the
// Ledger's (projections/writeside), against this State.
//
// # Purity
//
// The package does no I/O and reads no clock and no global randomness. Every
// function that needs the time takes now; every function that mints a key
// takes an entropy io.Reader (crypto/rand.Reader in production); new key ids
// ("key_<ULID>") are passed in by the caller.
//
// # Key format
//
// A key is KeyPrefix ("cst_"), then 43 base62 characters that encode 256 bits
// read from the entropy reader (fixed width, zero-padded, most significant
// digit first), then 6 base62 characters that encode the CRC-32 (IEEE) of those
// 43 body characters. The base62 alphabet is 0-9, A-Z, a-z in that order. The
// whole key matches Pattern. The checksum lets secret scanners tell a real
// key from noise offline; it is not a security feature. Only Hash(key), the
// SHA-256 of the key string, is ever stored or logged; the plaintext is shown
// to its owner once.
//
// # Commands, events and Apply
//
// Create, Rotate and Revoke are deciders: they validate a command against a
// State and the given time and return the event to record. They never mutate
// the State. The caller appends the event to the log and then passes it to
// State.Apply. Apply is the one fold used for live state, start-up replay and
// point-in-time replay; it checks only structural sanity (ids exist, ids and
// hashes are unique, scopes are known) and never re-runs command rules, so an
// event once recorded always replays. Events carry stable wire names (the Type
// constants) and are encoded as JSON by Encode and decoded by Decode. Actors
// are not part of the payload; the log envelope records them.
//
// # Errors
//
// Errors map to HTTP statuses with errors.Is and errors.As:
//
//   - ErrNotFound: 404.
//   - ErrConflict and everything that wraps it (ErrRevoked, ErrExpired,
//     ErrRotated, ErrLastAdmin): 409.
//   - *ValidationError (also several of them joined with errors.Join): 422.
//   - ErrInvalidKey: 403 (or 401); one error for every authentication failure so
//     callers learn nothing about why.
//   - ErrInconsistent, ErrUnknownEvent, ErrMalformedID, entropy failures and
//     anything else: 500; they mean a bug or a corrupt log, not a bad request.
//
// # Concurrency
//
// A State is not safe for concurrent mutation. Callers serialize Apply (in
// custos, the one sequencer goroutine per chain does it) and either hold their
// own lock around reads or read from a copy made with Clone (a deep copy) or
// FrozenCopy (O(shards), copy-on-write, read-only; taken where no Apply or
// read runs, then readable on any goroutine while Apply goes on). Without a
// concurrent Apply, reads (ByID, ByHash, List, Len, and the deciders, which only
// read) are safe concurrently with each other. Key values returned by reads are
// copies; changing them does not change the State. The zero State is empty
// and ready to use. All other functions are safe for concurrent use as long as
// the io.Reader passed to them is.
package keys
