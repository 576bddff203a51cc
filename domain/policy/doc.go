// Package policy is the pure policy model and decision engine of custos: it
// parses nothing and performs no I/O, reads no clock and uses no randomness.
// It holds the [Policy] model with its [Policy.Validate] rules, compiles a
// validated policy into an immutable [Compiled] form, evaluates requests
// against it with [Compiled.Evaluate], indexes compiled policies in an
// immutable [Set], and owns every reason string that custos returns.
//
// # Specification
//
// Behaviour follows docs/policy-semantics.md ("the spec"): custos
// decides exactly as AutoPIL does, and reason strings match byte for byte.
// The spec evaluates a request in fourteen steps. Steps 1 to 4 (agent
// registry, role lock, session ownership and expiry, policy lookup) need state
// that lives outside this package; their callers build the decisions with the
// constructors [DenyAgentNotRegistered], [DenyAgentNotApproved],
// [DenyRoleNotPermitted], [DenySessionOwned], [DenySessionExpired],
// [DenyNoPolicy], [DenyPolicyAmbiguous] and [DenyKeyAgentMismatch], so that
// every reason template of the spec lives in this package and nowhere else.
// Step 4's choice of policy is [Set.Resolve]. Steps 5 to 14 are
// [Compiled.Evaluate].
//
// # Denial types
//
// [Decision.DenialType] classifies a denial. Its values are stable wire values:
// append-only, never renamed.
//
//   - "identity" ([DenialIdentity]): step 1 (agent not registered or not
//     approved) and an API key bound to another agent.
//   - "role" ([DenialRole]): step 2, the claimed role is not permitted.
//   - "session" ([DenialSession]): step 3, the session belongs to another role
//     or has expired.
//   - "policy" ([DenialPolicy]): steps 4 to 13, no policy for the role,
//     several and no binding that resolves, or the policy denies.
//
// An allowed decision has an empty DenialType.
//
// # Absent versus empty
//
// Where the spec gives an absent field a meaning that differs from an empty
// one, the model keeps the difference: a nil slice or nil pointer is absent,
// a non-nil empty slice is present and empty. Each such field documents both
// meanings. JSON encoding preserves the difference for every list (the
// fields use omitzero, so nil is omitted and an empty list is written as []),
// so a policy is served back as it was given. Note that YAML encoders
// such as go.yaml.in/yaml/v3 write a nil slice as [], so encoding a Policy to
// YAML and back turns an absent list into an empty one; decoding YAML is exact.
//
// # Concurrency
//
// [Policy] is a plain value with no synchronisation. [Compiled] and [Set] are
// immutable once built and safe for concurrent use by any number of
// goroutines; [Set.With] and [Set.Without] return new sets and never modify
// the receiver, so a reader may keep a snapshot without locks.
//
// # Errors
//
// [Policy.Validate] reports every problem at once: it returns an
// [errors.Join] of [*FieldError] values, each naming a field path such as
// task_bindings[1].actions[0]; every one matches [ErrInvalidPolicy] with
// [errors.Is]. Duplicate names or policy ids are [*ConflictError] values
// matching [ErrConflict]; several policies may share a role.
package policy
