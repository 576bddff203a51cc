// Package agents is the agent registry domain of custos: the Agent model and
// its lifecycle, the agent events, the registry projection (State) and the
// pure command deciders (Register, Update, ChangeStatus, Retire). The
// evaluator uses it for steps 1 and 2 of docs/policy-semantics.md: identity (the
// agent is registered and approved, see Agent.IsApproved) and the role lock
// (Agent.MayClaim, with Agent.ClaimableRoles for the role_not_permitted
// reason; a permitted claim is evaluated under the agent's own AgentRole).
//
// # Purity
//
// The package does no I/O and reads no clock and no global randomness. Every
// decider takes now; new agent ids ("agent_<ULID>") are minted by the caller
// and passed in. A policy_name is a binding by name that the evaluator
// resolves at each request; the registry never checks it against the
// policies, so it may name a policy that does not exist yet.
//
// # Identifiers
//
// agent_role and every entry of permitted_roles are 1 to MaxIDLength (128)
// characters from IDCharset: ASCII letters, digits and . _ : @ / - (so roles
// such as "spiffe/claims:v2" or "bot@team" work). A new agent_id follows
// AgentIDCharset, ^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$ (so "agent_01J...",
// "loan-agent", "claims:v2" or a UUID work, and every id is one path
// segment); agents registered before that rule keep ids with '/'. All are
// case-sensitive and never trimmed. The labels (display_name, owner,
// owner_team, framework) follow text.Identifier and description
// text.FreeText (it may hold tabs and line breaks), at most 128 characters
// (description 1024).
//
// # Statuses and transitions
//
// A registered agent starts as draft. Only approved agents pass the identity
// step of an evaluation. The legal transitions are:
//
//	from        to
//	draft       approved, retired
//	approved    suspended, retired
//	suspended   approved, retired
//	retired     (none: retired is final)
//
// Changing to the current status is not a transition and is refused. Retire
// (the DELETE of the HTTP API) is ChangeStatus to retired: agents are never
// removed, so an agent_id is never reused and the log keeps its history.
// A retired agent cannot be updated either, List leaves it out unless asked
// for, and registering its agent_id again is ErrRetiredID; a registration
// without agent_id gets a fresh id.
//
// # Commands, events and Apply
//
// Register, Update, ChangeStatus and Retire are deciders: they validate a
// command against a State and the given time and return the event to record
// (agent.registered, agent.updated, agent.status_changed). They never mutate
// the State. The caller appends the event to the log and then passes it to
// State.Apply. Apply is the one fold used for live state, start-up replay and
// point-in-time replay; it checks only structural sanity (ids exist or are
// new, statuses are known and match) and never re-runs command rules, so an
// event once recorded always replays, even if its policy was deleted since.
// agent.registered and agent.updated carry the complete agent as
// {"agent": {...}}, so the log reads without replay. Events are encoded as
// JSON by Encode and decoded by Decode. Actors are not part of the payload;
// the log envelope records them.
//
// # Errors
//
// Errors map to HTTP statuses with errors.Is and errors.As:
//
//   - ErrNotFound: 404.
//   - ErrConflict and everything that wraps it (ErrAgentExists, ErrRetired,
//     ErrRetiredID, *TransitionError): 409.
//   - *ValidationError (also several of them joined with errors.Join): 422.
//   - ErrInconsistent, ErrUnknownEvent, a missing or malformed generated id
//     and anything else: 500; they mean a bug or a corrupt log, not a bad
//     request.
//
// # Concurrency
//
// A State is not safe for concurrent mutation. Callers serialize Apply (in
// custos, the one sequencer goroutine per chain does it) and either hold their
// own lock around reads or read from a copy made with Clone (a deep copy) or
// FrozenCopy (O(shards), copy-on-write, read-only; taken where no Apply or
// read runs, then readable on any goroutine while Apply goes on). Without a
// concurrent Apply, reads (ByID, List, Len, and the deciders, which only
// read) are safe concurrently with each other. Agent values returned by reads
// are copies; changing them does not change the State. The zero State is
// empty and ready to use. All other functions are safe for concurrent use.
package agents
