// Package tenants is the tenant domain of custos: tenant ids, the tenant
// events, the tenant projection (State) and the pure deciders (Create,
// Suspend, Resume).
//
// A tenant is one isolated chain of the deployment's store: its own keys,
// policies, agents, sessions, audit index, Merkle tree and checkpoints. The
// tenant events themselves live on the system chain (SystemChain), which no
// tenant key can read; every superadmin action on a tenant is also recorded
// on that tenant's own chain by the caller, so the tenant's auditors see it.
//
// # Ids
//
// A tenant id (ParseID) is 1 to 32 characters of lowercase letters, digits
// and '-', starting with a letter and not ending with '-'. Every id is
// therefore a valid eventstore chain name, and so are the derived
// namespaces built from it ("idx-" + id, "snap-" + id). SystemChain is not
// a tenant id. Ids never change and are never reused: a tenant is
// suspended, never deleted, so its history stays verifiable.
//
// # Purity
//
// The package imports only the standard library, does no I/O and reads no
// clock: every decider takes now. Deciders never mutate a State; the
// caller appends the event and then passes it to State.Apply, the one fold
// used for live state and replay. Apply checks structural sanity only, so
// an event once recorded always replays.
//
// # Errors
//
// ErrNotFound (HTTP 404), ErrConflict and its children (409),
// *ValidationError (422), ErrUnknownEvent and ErrInconsistent (a corrupt
// log or a bug).
package tenants
