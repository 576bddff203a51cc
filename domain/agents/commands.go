package agents

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/custos-dev/custos/domain/text"
)

// Command limits. Lengths count characters (Unicode code points); the
// identifier charset is ASCII, so for identifiers characters are bytes.
const (
	// MaxIDLength is the longest agent_id, agent_role or permitted role.
	MaxIDLength = 128
	// MaxDisplayNameLength is the longest display_name.
	MaxDisplayNameLength = 128
	// MaxDescriptionLength is the longest description.
	MaxDescriptionLength = 1024
	// MaxLabelLength is the longest owner, owner_team or framework.
	MaxLabelLength = 128
	// MaxPermittedRoles is the largest number of permitted_roles.
	MaxPermittedRoles = 64
	// MaxPolicyNameLength is the longest policy_name binding.
	MaxPolicyNameLength = 256
)

// IDCharset lists the characters allowed in agent_role and every permitted
// role: ASCII letters and digits and . _ : @ / -. No spaces, no other
// punctuation, no non-ASCII characters; matching is case-sensitive.
const IDCharset = "A-Z a-z 0-9 . _ : @ / -"

// AgentIDCharset describes the agent_id of a new registration: an ASCII
// letter or digit, then letters, digits and . _ : @ -, at most MaxIDLength
// in all (^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$). No '/', so that every
// agent_id is one path segment of /v1/agents/{agent_id}. Agents registered
// before this rule keep their ids.
const AgentIDCharset = "a letter or digit, then A-Z a-z 0-9 . _ : @ -"

// RegisterCommand asks for a new agent. Field names in errors are the
// snake_case names given in the comments. Strings are stored as given (not
// trimmed).
type RegisterCommand struct {
	// AgentID (agent_id) is optional; when empty the agent gets the id the
	// caller minted. When given: 1 to MaxIDLength characters as
	// AgentIDCharset says.
	AgentID string
	// AgentRole (agent_role) is required: 1 to MaxIDLength characters from
	// IDCharset.
	AgentRole string
	// DisplayName (display_name) is optional: at most MaxDisplayNameLength
	// characters, an identifier by text.Identifier (valid UTF-8, no control,
	// bidi, zero-width or other invisible characters).
	DisplayName string
	// Description (description) is optional: at most MaxDescriptionLength
	// characters, free text by text.FreeText (valid UTF-8, no control
	// characters other than tab, line feed and carriage return).
	Description string
	// Owner (owner), OwnerTeam (owner_team) and Framework (framework) are
	// optional: at most MaxLabelLength characters each, identifiers by
	// text.Identifier.
	Owner     string
	OwnerTeam string
	Framework string
	// PolicyName (policy_name) optionally binds the agent to a policy by
	// name: at most MaxPolicyNameLength characters, valid UTF-8, no control
	// characters. The name need not exist yet: it is resolved at every
	// evaluation, so a policy created later under it takes effect then.
	// Empty: the policy is found by agent_role.
	PolicyName string
	// PolicyID (policy_id) optionally binds the agent to a policy by id,
	// with the same rules as PolicyName; when both are given and both
	// resolve, the id wins. Empty: no binding by id.
	PolicyID string
	// PermittedRoles (permitted_roles, permitted_roles[i]) are roles the
	// agent may claim besides agent_role: at most MaxPermittedRoles, each
	// like agent_role, no duplicates. They may include agent_role itself, as
	// AutoPIL's files do; reasons then list them as given. Empty and nil mean
	// the same.
	PermittedRoles []string
}

// UpdateCommand asks to change some fields of an agent. A nil field keeps
// its current value; a non-nil one replaces it and is validated as in
// RegisterCommand (fields not given are not re-validated). PolicyName or
// PolicyID set to "" removes that binding; PermittedRoles set to an empty list removes every
// permitted role. agent_id and status cannot be updated (use ChangeStatus).
type UpdateCommand struct {
	AgentRole      *string
	DisplayName    *string
	Description    *string
	Owner          *string
	OwnerTeam      *string
	Framework      *string
	PolicyName     *string
	PolicyID       *string
	PermittedRoles *[]string
}

// Register decides a new agent. It returns the event to record; s is only
// read. The agent_id is cmd.AgentID when given, else newID (the caller
// mints it as "agent_<ULID>"). The agent starts as draft; created_at,
// updated_at and status_changed_at are now (UTC).
//
// Errors, in this order: every broken field rule as *ValidationError values
// joined with errors.Join (422); an agent_id of a retired agent:
// ErrRetiredID (409: ids are never reused; a registration without agent_id
// gets a fresh one); an agent_id that is already registered: ErrAgentExists
// (409); no agent_id given and newID empty or not a valid id: a plain error
// (500, a caller bug).
func Register(s *State, cmd RegisterCommand, now time.Time, newID string) (AgentRegistered, error) {
	var v validator
	id := cmd.AgentID
	if id != "" {
		v.agentID(id)
	}
	v.id("agent_role", cmd.AgentRole)
	v.text("display_name", cmd.DisplayName, MaxDisplayNameLength, false)
	v.text("description", cmd.Description, MaxDescriptionLength, true)
	v.text("owner", cmd.Owner, MaxLabelLength, false)
	v.text("owner_team", cmd.OwnerTeam, MaxLabelLength, false)
	v.text("framework", cmd.Framework, MaxLabelLength, false)
	v.text("policy_name", cmd.PolicyName, MaxPolicyNameLength, false)
	v.text("policy_id", cmd.PolicyID, MaxPolicyNameLength, false)
	v.permittedRoles(cmd.PermittedRoles)
	if err := v.err(); err != nil {
		return AgentRegistered{}, err
	}
	if id == "" {
		if agentIDProblem(newID) != "" {
			return AgentRegistered{}, fmt.Errorf("agents: register: no agent_id given and the generated id '%s' is not valid", newID)
		}
		id = newID
	}
	if old, dup := s.byID.Get(id); dup {
		if old.Status == StatusRetired {
			return AgentRegistered{}, fmt.Errorf("%w: agent_id '%s' was retired at %s; register without agent_id to get a fresh one",
				ErrRetiredID, id, old.StatusChangedAt.UTC().Format(time.RFC3339))
		}
		return AgentRegistered{}, fmt.Errorf("%w: '%s'", ErrAgentExists, id)
	}
	now = now.UTC()
	a := Agent{
		AgentID:         id,
		AgentRole:       cmd.AgentRole,
		DisplayName:     cmd.DisplayName,
		Description:     cmd.Description,
		Owner:           cmd.Owner,
		OwnerTeam:       cmd.OwnerTeam,
		Framework:       cmd.Framework,
		PolicyName:      cmd.PolicyName,
		PolicyID:        cmd.PolicyID,
		PermittedRoles:  cmd.PermittedRoles,
		Status:          StatusDraft,
		CreatedAt:       now,
		UpdatedAt:       now,
		StatusChangedAt: now,
	}
	return AgentRegistered{Agent: a.clone()}, nil
}

// Update decides a partial update of the agent with agent_id id. It returns
// the event to record, which carries the complete agent after the update
// with updated_at = now (UTC); s is only read. Every update is recorded, even
// one that changes nothing. A policy_name, as in Register, need not name an
// existing policy.
//
// Errors, in this order: no agent with id: ErrNotFound (404); broken field
// rules as *ValidationError values joined (422); the agent is retired:
// ErrRetired (409).
func Update(s *State, id string, cmd UpdateCommand, now time.Time) (AgentUpdated, error) {
	old, ok := s.byID.Get(id)
	if !ok {
		return AgentUpdated{}, fmt.Errorf("%w: agent_id '%s'", ErrNotFound, id)
	}
	a := old.clone()
	var v validator
	if cmd.AgentRole != nil {
		a.AgentRole = *cmd.AgentRole
		v.id("agent_role", a.AgentRole)
	}
	setText := func(field string, dst *string, src *string, maxChars int, multiline bool) {
		if src != nil {
			*dst = *src
			v.text(field, *src, maxChars, multiline)
		}
	}
	setText("display_name", &a.DisplayName, cmd.DisplayName, MaxDisplayNameLength, false)
	setText("description", &a.Description, cmd.Description, MaxDescriptionLength, true)
	setText("owner", &a.Owner, cmd.Owner, MaxLabelLength, false)
	setText("owner_team", &a.OwnerTeam, cmd.OwnerTeam, MaxLabelLength, false)
	setText("framework", &a.Framework, cmd.Framework, MaxLabelLength, false)
	if cmd.PolicyName != nil {
		a.PolicyName = *cmd.PolicyName
		v.text("policy_name", a.PolicyName, MaxPolicyNameLength, false)
	}
	if cmd.PolicyID != nil {
		a.PolicyID = *cmd.PolicyID
		v.text("policy_id", a.PolicyID, MaxPolicyNameLength, false)
	}
	if cmd.PermittedRoles != nil {
		a.PermittedRoles = *cmd.PermittedRoles
		v.permittedRoles(a.PermittedRoles)
	}
	if err := v.err(); err != nil {
		return AgentUpdated{}, err
	}
	if old.Status == StatusRetired {
		return AgentUpdated{}, fmt.Errorf("%w: agent_id '%s'", ErrRetired, id)
	}
	a.UpdatedAt = now.UTC()
	return AgentUpdated{Agent: a.clone()}, nil
}

// ChangeStatus decides that the agent with agent_id id moves to status to at
// now (UTC). Only the transitions in the package doc are legal (see
// CanTransition); s is only read.
//
// Errors, in this order: to is not a known status: *ValidationError on field
// status (422); no agent with id: ErrNotFound (404); to equals the current
// status, the agent is retired, or the transition is not legal: a
// *TransitionError naming both statuses, matching ErrConflict (409) and, for
// a retired agent, ErrRetired.
func ChangeStatus(s *State, id, to string, now time.Time) (AgentStatusChanged, error) {
	st, err := ParseStatus(to)
	if err != nil {
		return AgentStatusChanged{}, err
	}
	old, ok := s.byID.Get(id)
	if !ok {
		return AgentStatusChanged{}, fmt.Errorf("%w: agent_id '%s'", ErrNotFound, id)
	}
	if !CanTransition(old.Status, st) {
		return AgentStatusChanged{}, &TransitionError{AgentID: id, From: old.Status, To: st}
	}
	return AgentStatusChanged{AgentID: id, From: old.Status, To: st, ChangedAt: now.UTC()}, nil
}

// Retire decides that the agent with agent_id id is retired at now: it is
// ChangeStatus to StatusRetired, the semantics of DELETE. Agents are never
// removed from the registry, so their ids are never reused. Retiring a
// retired agent is a *TransitionError matching ErrRetired (409).
func Retire(s *State, id string, now time.Time) (AgentStatusChanged, error) {
	return ChangeStatus(s, id, string(StatusRetired), now)
}

// validator collects every broken field rule of a command.
type validator struct {
	errs []error
}

func (v *validator) add(field, format string, args ...any) {
	v.errs = append(v.errs, &ValidationError{Field: field, Problem: fmt.Sprintf(format, args...)})
}

// err returns nil, the one error, or every error joined.
func (v *validator) err() error {
	switch len(v.errs) {
	case 0:
		return nil
	case 1:
		return v.errs[0]
	}
	return errors.Join(v.errs...)
}

// id checks an identifier: agent_role or a permitted role.
func (v *validator) id(field, value string) {
	if v.refused(field, text.Identifier(value)) {
		return
	}
	if p := idProblem(value); p != "" {
		v.add(field, "%s", p)
	}
}

// agentID checks the agent_id of a new registration.
func (v *validator) agentID(value string) {
	if v.refused("agent_id", text.Identifier(value)) {
		return
	}
	if p := agentIDProblem(value); p != "" {
		v.add("agent_id", "%s", p)
	}
}

// refused records err, a character refused by the text rule, on field and
// reports whether there was one.
func (v *validator) refused(field string, err error) bool {
	if err != nil {
		v.errs = append(v.errs, &ValidationError{Field: field, Problem: text.Problem(err), Err: err})
	}
	return err != nil
}

// agentIDProblem returns what is wrong with the new agent id s, or "".
func agentIDProblem(s string) string {
	if p := idProblem(s); p != "" {
		return p
	}
	if c := s[0]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
		return fmt.Sprintf("must start with a letter or digit, not %q (allowed: %s)", rune(c), AgentIDCharset)
	}
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return fmt.Sprintf("character '/' at byte %d is not allowed in an agent_id (allowed: %s)", i, AgentIDCharset)
	}
	return ""
}

// idProblem returns what is wrong with the identifier s, or "" if nothing is.
func idProblem(s string) string {
	if s == "" {
		return "required"
	}
	if len(s) > MaxIDLength {
		return "must be at most " + strconv.Itoa(MaxIDLength) + " characters"
	}
	for i := 0; i < len(s); i++ {
		if !idChar(s[i]) {
			r, _ := utf8.DecodeRuneInString(s[i:])
			return fmt.Sprintf("character %q at byte %d is not allowed (allowed: %s)", r, i, IDCharset)
		}
	}
	return ""
}

func idChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("._:@/-", c) >= 0
}

// text checks an optional label (text.Identifier) or, multiline, free text
// (text.FreeText).
func (v *validator) text(field, s string, maxChars int, multiline bool) {
	rule := text.Identifier
	if multiline {
		rule = text.FreeText
	}
	if !v.refused(field, rule(s)) && utf8.RuneCountInString(s) > maxChars {
		v.add(field, "must be at most %d characters", maxChars)
	}
}

// permittedRoles checks the permitted roles of an agent. They may include
// the agent's own role.
func (v *validator) permittedRoles(roles []string) {
	if len(roles) > MaxPermittedRoles {
		v.add("permitted_roles", "must hold at most %d roles, got %d", MaxPermittedRoles, len(roles))
		return
	}
	seen := make(map[string]int, len(roles))
	for i, r := range roles {
		field := "permitted_roles[" + strconv.Itoa(i) + "]"
		if v.refused(field, text.Identifier(r)) {
			continue
		}
		if p := idProblem(r); p != "" {
			v.add(field, "%s", p)
			continue
		}
		if j, dup := seen[r]; dup {
			v.add(field, "duplicate role '%s' (also permitted_roles[%d])", r, j)
			continue
		}
		seen[r] = i
	}
}
