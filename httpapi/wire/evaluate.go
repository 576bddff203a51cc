package wire

import (
	"time"

	"github.com/custos-dev/custos/domain/decision"
)

// EvaluateRequest is the body of POST /v1/context/evaluate, with AutoPIL's
// field names: may the agent retrieve from the source?
type EvaluateRequest struct {
	AgentRole        string   `json:"agent_role"`
	AgentID          string   `json:"agent_id,omitempty"`
	UserID           string   `json:"user_id,omitempty"`
	SourceID         string   `json:"source_id"`
	SensitivityLevel string   `json:"sensitivity_level,omitempty"`
	SessionID        string   `json:"session_id,omitempty"`
	TaskType         string   `json:"task_type,omitempty"`
	Action           string   `json:"action,omitempty"`
	Query            string   `json:"query,omitempty"`
	PrincipalClaims  []string `json:"principal_claims,omitempty"`
}

// Decision answers POST /v1/context/evaluate with 200 for both outcomes;
// every decision is recorded as event EventID at Seq before it is sent.
type Decision struct {
	// Decision is "ALLOW" or "DENY".
	Decision string `json:"decision"`
	// Reason is the exact reason text of docs/policy-semantics.md.
	Reason     string `json:"reason"`
	PolicyName string `json:"policy_name"`
	// PolicyID and PolicyVersion identify the deciding policy; null when
	// no policy decided.
	PolicyID      *string `json:"policy_id"`
	PolicyVersion *int    `json:"policy_version"`
	// PolicyResolution says which rule chose the deciding policy: "bound"
	// (the agent's policy binding) or "role" (the role's only policy);
	// null when no policy decided.
	PolicyResolution *string `json:"policy_resolution"`
	// DenialType is left out for an ALLOW.
	DenialType string `json:"denial_type,omitempty"`
	EventID    string `json:"event_id"`
	Seq        uint64 `json:"seq"`
	// LeafIndex is the event's leaf in the chain's Merkle tree, Seq - 1:
	// the index of its inclusion proof and receipt (docs/proofs.md).
	LeafIndex   uint64    `json:"leaf_index"`
	SessionID   string    `json:"session_id"`
	EvaluatedAt time.Time `json:"evaluated_at"`
	// Receipt is the decision's receipt (C2SP tlog-proof text, as GET
	// /v1/audit/events/{event_id}/receipt serves it), present only when
	// the request carried ReceiptHeader: true and a checkpoint covers the
	// event.
	Receipt string `json:"receipt,omitempty"`
}

// ReceiptHeader set to "true" on POST /v1/context/evaluate asks for the
// decision's receipt in the answer (Decision.Receipt).
const ReceiptHeader = "X-Custos-Receipt"

// Allowed reports whether d is an ALLOW.
func (d Decision) Allowed() bool { return d.Decision == decision.Allow }
