package policy

import (
	"encoding/json"
	"errors"
	"github.com/custos-dev/custos/domain/internal/codec"
	"time"
)

// Wire names of the policy events. They are stored in the log and never
// change.
const (
	TypePolicyCreated = "policy.created"
	TypePolicyUpdated = "policy.updated"
	TypePolicyDeleted = "policy.deleted"
)

// ErrUnknownEvent reports an event type this package does not know, in
// [Encode], [Decode] or [State.Apply].
var ErrUnknownEvent = errors.New("policy: unknown event type")

// Event is a policy event: a past-tense fact that [State.Apply] folds into
// the policy projection. The implementations are [PolicyCreated],
// [PolicyUpdated] and [PolicyDeleted]; Encode, Decode and Apply accept those
// (values or non-nil pointers) and nothing else.
type Event interface {
	// EventType returns the stable wire name of the event.
	EventType() string
}

// PolicyCreated records a new policy. Policy is complete: policy_id,
// version, created_at and updated_at are set. Its payload is
// {"policy": {...}}.
//
// A policy created by [Create] has version 1. [Sync] may record a
// policy.created for an existing policy_id that it deleted earlier in the
// same batch (to break a cycle of role or name swaps); that event carries the
// policy's continued version and original created_at.
type PolicyCreated struct {
	Policy Policy
}

// PolicyUpdated records the new content of an existing policy. Policy is
// complete; its version is greater than the previous one and created_at is
// the original creation time. Its payload is {"policy": {...}}.
type PolicyUpdated struct {
	Policy Policy
}

// PolicyDeleted records that a policy was removed. Name, AgentRole and
// Version describe the policy as it was when deleted, so that the log reads
// without replay. Times are UTC.
type PolicyDeleted struct {
	PolicyID  string    `json:"policy_id"`
	Name      string    `json:"name"`
	AgentRole string    `json:"agent_role"`
	Version   int       `json:"version"`
	DeletedAt time.Time `json:"deleted_at"`
}

// EventType returns TypePolicyCreated.
func (PolicyCreated) EventType() string { return TypePolicyCreated }

// EventType returns TypePolicyUpdated.
func (PolicyUpdated) EventType() string { return TypePolicyUpdated }

// EventType returns TypePolicyDeleted.
func (PolicyDeleted) EventType() string { return TypePolicyDeleted }

var (
	_ Event = PolicyCreated{}
	_ Event = PolicyUpdated{}
	_ Event = PolicyDeleted{}

	_ json.Marshaler   = PolicyCreated{}
	_ json.Unmarshaler = (*PolicyCreated)(nil)
	_ json.Marshaler   = PolicyUpdated{}
	_ json.Unmarshaler = (*PolicyUpdated)(nil)
)

// MarshalJSON writes {"policy": {...}} with the exact wire form of the
// policy (see [Encode]), so that json.Marshal of the event, as done by the
// domain package, gives the same bytes as Encode.
func (e PolicyCreated) MarshalJSON() ([]byte, error) { return marshalPolicyEvent(e.Policy) }

// UnmarshalJSON reads what MarshalJSON writes.
func (e *PolicyCreated) UnmarshalJSON(b []byte) error { return unmarshalPolicyEvent(b, &e.Policy) }

// MarshalJSON writes {"policy": {...}}; see [PolicyCreated.MarshalJSON].
func (e PolicyUpdated) MarshalJSON() ([]byte, error) { return marshalPolicyEvent(e.Policy) }

// UnmarshalJSON reads what MarshalJSON writes.
func (e *PolicyUpdated) UnmarshalJSON(b []byte) error { return unmarshalPolicyEvent(b, &e.Policy) }

// decoders maps each wire name to its event.
var decoders = map[string]codec.Decoder[Event]{
	TypePolicyCreated: codec.As[PolicyCreated, Event](nil),
	TypePolicyUpdated: codec.As[PolicyUpdated, Event](nil),
	TypePolicyDeleted: codec.As[PolicyDeleted, Event](nil),
}

// Decode parses the JSON payload of an event of wire type typ (events are
// stored as their json.Marshal encoding). It returns the event as a value
// (PolicyCreated, not *PolicyCreated). An unknown typ yields an error
// wrapping [ErrUnknownEvent]. Unknown JSON fields are ignored so that a log
// written by a newer version that only added fields still decodes; Apply
// checks that required fields are present.
//
// The policy inside policy.created and policy.updated is written with the
// field names of [Policy]'s JSON tags, but every list that is present is
// written, even when empty, and every absent (nil) list is omitted (see
// PolicyCreated.MarshalJSON). Decode therefore returns the policy exactly:
// absent and empty lists stay distinct at every depth, so that replay equals
// live state byte for byte.
func Decode(typ string, payload []byte) (Event, error) {
	return codec.Decode("policy", decoders, typ, payload, ErrUnknownEvent)
}

// policyEventWire is the payload of policy.created and policy.updated.
type policyEventWire struct {
	Policy wirePolicy `json:"policy"`
}

func marshalPolicyEvent(p Policy) ([]byte, error) {
	return json.Marshal(policyEventWire{Policy: toWire(p)})
}

func unmarshalPolicyEvent(b []byte, p *Policy) error {
	var w policyEventWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*p = w.Policy.policy()
	return nil
}

// wirePolicy is the log form of a Policy: the same JSON names and order, but
// omitzero on every list, so that nil (absent) is omitted and a non-nil
// empty list is written as []. Policy's own tags now do the same (so the API
// serves a policy back as given), but the log form stays pinned here, apart
// from the tags a reader may change for the API. TaskBinding, DecayStep and RegulationRule already
// round-trip exactly and are used as they are; wireEntitlement and
// wireRegulation mirror their types field for field (a conversion checks
// that at compile time). The round-trip tests fill every field by reflection,
// so a field added to Policy but not here fails them.
type wirePolicy struct {
	Name                         string            `json:"name"`
	PolicyID                     string            `json:"policy_id,omitempty"`
	AgentRole                    string            `json:"agent_role"`
	Description                  string            `json:"description,omitempty"`
	Industry                     string            `json:"industry,omitempty"`
	Organization                 string            `json:"organization,omitempty"`
	Division                     string            `json:"division,omitempty"`
	ProcessGroup                 string            `json:"process_group,omitempty"`
	Regulations                  []wireRegulation  `json:"regulations,omitzero"`
	PermittedAgentIDs            []string          `json:"permitted_agent_ids,omitzero"`
	AllowedSources               []string          `json:"allowed_sources,omitzero"`
	DeniedSources                []string          `json:"denied_sources,omitzero"`
	AllowedTasks                 []string          `json:"allowed_tasks,omitzero"`
	DeniedTasks                  []string          `json:"denied_tasks,omitzero"`
	MaxSensitivity               *Level            `json:"max_sensitivity,omitempty"`
	RequireTaskForSensitivity    *Level            `json:"require_task_for_sensitivity,omitempty"`
	TaskBindings                 []TaskBinding     `json:"task_bindings,omitzero"`
	AllowedActions               []Action          `json:"allowed_actions,omitzero"`
	DeniedActions                []Action          `json:"denied_actions,omitzero"`
	SessionTTLMinutes            *int              `json:"session_ttl_minutes,omitempty"`
	SensitivityDecay             []DecayStep       `json:"sensitivity_decay,omitzero"`
	RequirePrincipalEntitlements []wireEntitlement `json:"require_principal_entitlements,omitzero"`
	Version                      int               `json:"version,omitempty"`
	CreatedAt                    time.Time         `json:"created_at,omitzero"`
	UpdatedAt                    time.Time         `json:"updated_at,omitzero"`
}

// wireEntitlement is EntitlementRule with omitzero lists.
type wireEntitlement struct {
	Sources    []string `json:"sources"`
	Actions    []Action `json:"actions,omitzero"`
	RequireAny []string `json:"require_any,omitzero"`
	RequireAll []string `json:"require_all,omitzero"`
}

// wireRegulation is Regulation with an omitzero list.
type wireRegulation struct {
	ID              string           `json:"id,omitempty"`
	Name            string           `json:"name,omitempty"`
	ApplicableRules []RegulationRule `json:"applicable_rules,omitzero"`
}

// convertSlice converts each element of in, keeping nil nil and empty empty.
func convertSlice[T, U any](in []T, f func(T) U) []U {
	if in == nil {
		return nil
	}
	out := make([]U, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

func toWire(p Policy) wirePolicy {
	p = p.Clone()
	return wirePolicy{
		Name:                      p.Name,
		PolicyID:                  p.PolicyID,
		AgentRole:                 p.AgentRole,
		Description:               p.Description,
		Industry:                  p.Industry,
		Organization:              p.Organization,
		Division:                  p.Division,
		ProcessGroup:              p.ProcessGroup,
		Regulations:               convertSlice(p.Regulations, func(r Regulation) wireRegulation { return wireRegulation(r) }),
		PermittedAgentIDs:         p.PermittedAgentIDs,
		AllowedSources:            p.AllowedSources,
		DeniedSources:             p.DeniedSources,
		AllowedTasks:              p.AllowedTasks,
		DeniedTasks:               p.DeniedTasks,
		MaxSensitivity:            p.MaxSensitivity,
		RequireTaskForSensitivity: p.RequireTaskForSensitivity,
		TaskBindings:              p.TaskBindings,
		AllowedActions:            p.AllowedActions,
		DeniedActions:             p.DeniedActions,
		SessionTTLMinutes:         p.SessionTTLMinutes,
		SensitivityDecay:          p.SensitivityDecay,
		RequirePrincipalEntitlements: convertSlice(p.RequirePrincipalEntitlements,
			func(r EntitlementRule) wireEntitlement { return wireEntitlement(r) }),
		Version:   p.Version,
		CreatedAt: p.CreatedAt,
		UpdatedAt: p.UpdatedAt,
	}
}

func (w wirePolicy) policy() Policy {
	return Policy{
		Name:                      w.Name,
		PolicyID:                  w.PolicyID,
		AgentRole:                 w.AgentRole,
		Description:               w.Description,
		Industry:                  w.Industry,
		Organization:              w.Organization,
		Division:                  w.Division,
		ProcessGroup:              w.ProcessGroup,
		Regulations:               convertSlice(w.Regulations, func(r wireRegulation) Regulation { return Regulation(r) }),
		PermittedAgentIDs:         w.PermittedAgentIDs,
		AllowedSources:            w.AllowedSources,
		DeniedSources:             w.DeniedSources,
		AllowedTasks:              w.AllowedTasks,
		DeniedTasks:               w.DeniedTasks,
		MaxSensitivity:            w.MaxSensitivity,
		RequireTaskForSensitivity: w.RequireTaskForSensitivity,
		TaskBindings:              w.TaskBindings,
		AllowedActions:            w.AllowedActions,
		DeniedActions:             w.DeniedActions,
		SessionTTLMinutes:         w.SessionTTLMinutes,
		SensitivityDecay:          w.SensitivityDecay,
		RequirePrincipalEntitlements: convertSlice(w.RequirePrincipalEntitlements,
			func(r wireEntitlement) EntitlementRule { return EntitlementRule(r) }),
		Version:   w.Version,
		CreatedAt: w.CreatedAt,
		UpdatedAt: w.UpdatedAt,
	}
}
