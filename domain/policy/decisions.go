package policy

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Denial types: stable wire values of [Decision.DenialType], append-only.
const (
	// DenialIdentity: step 1 (agent not registered or not approved) and an
	// API key bound to another agent.
	DenialIdentity = "identity"
	// DenialRole: step 2, the claimed role is not permitted for the agent.
	DenialRole = "role"
	// DenialSession: step 3, the session is owned by another role or has
	// expired.
	DenialSession = "session"
	// DenialPolicy: steps 4 to 13, no policy for the role or the policy
	// denies.
	DenialPolicy = "policy"
)

// Policy names of decisions made before a policy applies (stable wire
// values).
const (
	NameAgentNotRegistered  = "agent_not_registered"
	NameAgentNotApproved    = "agent_not_approved"
	NameRoleNotPermitted    = "role_not_permitted"
	NameCrossAgentIsolation = "cross_agent_isolation"
	NameSessionExpired      = "session_expired"
	NameDefaultDeny         = "default_deny"
	NamePolicyAmbiguous     = "policy_ambiguous"
	NameKeyAgentMismatch    = "key_agent_mismatch"
)

// ReasonAccessGranted is the reason of every ALLOW.
const ReasonAccessGranted = "Access granted"

// DenyAgentNotRegistered is the step 1 denial for an agent_id unknown to the
// agent registry.
func DenyAgentNotRegistered(agentID string) Decision {
	return Decision{
		Reason:     "Agent '" + agentID + "' is not registered",
		PolicyName: NameAgentNotRegistered,
		DenialType: DenialIdentity,
	}
}

// DenyAgentNotApproved is the step 1 denial for a registered agent whose
// status is not approved.
func DenyAgentNotApproved(agentID, status string) Decision {
	return Decision{
		Reason:     "Agent '" + agentID + "' is not approved (status: '" + status + "')",
		PolicyName: NameAgentNotApproved,
		DenialType: DenialIdentity,
	}
}

// DenyRoleNotPermitted is the step 2 denial: agentID may not act as
// claimedRole. permitted is printed as a list in the given order; pass the
// agent's permitted roles as registered.
func DenyRoleNotPermitted(agentID, claimedRole string, permitted []string) Decision {
	return Decision{
		Reason: "Agent '" + agentID + "' is not permitted to act as '" + claimedRole +
			"' — permitted: " + formatList(permitted),
		PolicyName: NameRoleNotPermitted,
		DenialType: DenialRole,
	}
}

// DenySessionOwned is the step 3 denial for a session owned by another role.
func DenySessionOwned(sessionID, ownerRole, requestingRole string) Decision {
	return Decision{
		Reason: "Session '" + ShortSessionID(sessionID) + "' is owned by '" + ownerRole + "' — '" +
			requestingRole + "' cannot access another agent's context",
		PolicyName: NameCrossAgentIsolation,
		DenialType: DenialSession,
	}
}

// DenySessionExpired is the step 3 denial for a session past its
// expires_at.
func DenySessionExpired(sessionID string) Decision {
	return Decision{
		Reason:     "Session '" + ShortSessionID(sessionID) + "' has expired",
		PolicyName: NameSessionExpired,
		DenialType: DenialSession,
	}
}

// DenyNoPolicy is the step 4 denial when no policy governs role (the
// canonical role).
func DenyNoPolicy(role string) Decision {
	return Decision{
		Reason:     "No policy found for role '" + role + "'",
		PolicyName: NameDefaultDeny,
		DenialType: DenialPolicy,
	}
}

// DenyPolicyAmbiguous is the step 4 denial when role has n (more than one)
// policies and agentID is bound to none of them: custos never picks one.
func DenyPolicyAmbiguous(role string, n int, agentID string) Decision {
	return Decision{
		Reason: "Role '" + role + "' has " + strconv.Itoa(n) + " policies and agent '" + agentID +
			"' is bound to none of them",
		PolicyName: NamePolicyAmbiguous,
		DenialType: DenialPolicy,
	}
}

// DenyKeyAgentMismatch is the denial for an API key bound to agent bound
// used by a request that evaluates as agentID.
func DenyKeyAgentMismatch(bound, agentID string) Decision {
	return Decision{
		Reason:     "Key is bound to agent '" + bound + "', not '" + agentID + "'",
		PolicyName: NameKeyAgentMismatch,
		DenialType: DenialIdentity,
	}
}

// ShortSessionID is a session id as reasons show it, like AutoPIL's
// f"{session_id[:8]}…": the first 8 characters (code points) followed by
// U+2026. A shorter id is shown whole, still followed by U+2026.
func ShortSessionID(id string) string {
	n := 0
	for i := range id {
		if n == 8 {
			return id[:i] + "…"
		}
		n++
	}
	return id + "…"
}

// formatList prints a list like Python's repr of a list of str, which is what
// AutoPIL's reasons contain: ['a', 'b'], [] when empty.
func formatList[S ~string](items []S) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, s := range items {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(pyRepr(string(s)))
	}
	b.WriteByte(']')
	return b.String()
}

// pyRepr quotes s as Python's repr(str) does: single quotes unless s holds a
// single quote and no double quote; backslash, the quote, \t, \n, \r and
// non-printable characters escaped (unicode.IsPrint matches Python's
// str.isprintable: letters, marks, numbers, punctuation, symbols and the
// ASCII space).
func pyRepr(s string) string {
	quote := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		quote = '"'
	}
	var b strings.Builder
	b.WriteByte(quote)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			// Not valid UTF-8; Python strings cannot hold it. Show the byte.
			b.WriteString(`\x`)
			b.WriteString(hex2(uint32(s[i])))
			i++
			continue
		}
		i += size
		switch {
		case r == '\\' || r == rune(quote):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\x`)
			b.WriteString(hex2(uint32(r)))
		case r < utf8.RuneSelf || unicode.IsPrint(r):
			b.WriteRune(r)
		case r <= 0xff:
			b.WriteString(`\x`)
			b.WriteString(hex2(uint32(r)))
		case r <= 0xffff:
			b.WriteString(`\u`)
			b.WriteString(pad(strconv.FormatUint(uint64(r), 16), 4))
		default:
			b.WriteString(`\U`)
			b.WriteString(pad(strconv.FormatUint(uint64(r), 16), 8))
		}
	}
	b.WriteByte(quote)
	return b.String()
}

func hex2(v uint32) string { return pad(strconv.FormatUint(uint64(v), 16), 2) }

func pad(s string, n int) string {
	for len(s) < n {
		s = "0" + s
	}
	return s
}
