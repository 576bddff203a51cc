package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/custos-dev/custos/domain/decision"
)

// Event is one event of the audit trail as GET /v1/audit/events shows it:
// the envelope, the decoded payload and both hashes.
type Event struct {
	Seq   uint64    `json:"seq"`
	ID    string    `json:"id"`
	Time  time.Time `json:"time"`
	Type  string    `json:"type"`
	Actor string    `json:"actor"`
	// Payload is the event's payload as stored: a JSON object for every
	// custos event (a base64 string only for bytes that are not JSON).
	// Decode decision.made payloads with DecisionMade.
	Payload json.RawMessage `json:"payload"`
	// PrevHash and Hash are 64 lowercase hex digits.
	PrevHash    string `json:"prev_hash"`
	Hash        string `json:"hash"`
	HashVersion uint16 `json:"hash_version"`
}

// DecisionMade is the payload of a decision.made event: the domain's own
// encoding, so it cannot drift from what the log stores.
type DecisionMade = decision.Made

// ErrNotDecision is returned by Event.DecisionMade for an event of another
// type than decision.made.
var ErrNotDecision = errors.New("wire: not a decision.made event")

// DecisionMade decodes the payload of a decision.made event; ErrNotDecision
// for any other type.
func (e Event) DecisionMade() (DecisionMade, error) {
	var m DecisionMade
	if e.Type != decision.TypeMade {
		return m, ErrNotDecision
	}
	if err := json.Unmarshal(e.Payload, &m); err != nil {
		return m, fmt.Errorf("wire: event %d: decode decision.made payload: %w", e.Seq, err)
	}
	return m, nil
}

// EventPage answers GET /v1/audit/events.
type EventPage struct {
	// Events are in seq order; an empty list, never null, when none match.
	Events []Event `json:"events"`
	// NextAfterSeq is the after_seq of the next page, or null when this
	// page is the last one.
	NextAfterSeq *uint64 `json:"next_after_seq"`
}

// TrailEvent is one decision of a session trail, flat, as AutoPIL's audit
// reader expects it.
type TrailEvent struct {
	EventID          string    `json:"event_id"`
	Seq              uint64    `json:"seq"`
	Time             time.Time `json:"time"`
	Decision         string    `json:"decision"`
	Reason           string    `json:"reason"`
	PolicyName       string    `json:"policy_name"`
	PolicyID         string    `json:"policy_id,omitempty"`
	PolicyVersion    int       `json:"policy_version,omitempty"`
	PolicyResolution string    `json:"policy_resolution,omitempty"`
	DenialType       string    `json:"denial_type,omitempty"`
	AgentID          string    `json:"agent_id"`
	AgentRole        string    `json:"agent_role"`
	UserID           string    `json:"user_id"`
	SourceID         string    `json:"source_id"`
	SensitivityLevel string    `json:"sensitivity_level"`
	TaskType         string    `json:"task_type,omitempty"`
	Action           string    `json:"action"`
	KeyID            string    `json:"key_id"`
}

// SessionTrail answers GET /v1/audit/sessions/{session_id}: every durable
// decision that named the session, in log order. The ownership fields are
// null when no decision started the session (every decision that named it
// came before the session step).
type SessionTrail struct {
	SessionID       string       `json:"session_id"`
	OwnerRole       *string      `json:"owner_role"`
	OwnerAgentID    *string      `json:"owner_agent_id"`
	StartedAt       *time.Time   `json:"started_at"`
	ExpiresAt       *time.Time   `json:"expires_at"`
	TotalEvents     int          `json:"total_events"`
	Allowed         int          `json:"allowed"`
	Denied          int          `json:"denied"`
	SourcesAccessed []string     `json:"sources_accessed"`
	FirstEvent      time.Time    `json:"first_event"`
	LastEvent       time.Time    `json:"last_event"`
	Events          []TrailEvent `json:"events"`
}

// VerifyReport answers GET /v1/audit/verify: the check of the live chain
// (docs/hash-spec.md, "Checking a chain"). A broken chain is a 200 with
// valid false.
type VerifyReport struct {
	// Valid is true when every check passed.
	Valid bool `json:"valid"`
	// Chain is the chain that was checked.
	Chain string `json:"chain"`
	// Total is the number of records found.
	Total uint64 `json:"total"`
	// Chained is the number of records whose hash and link were checked
	// and held, counted up to the first problem.
	Chained uint64 `json:"chained"`
	// Legacy counts records with a hash_version the server cannot check
	// but accepts.
	Legacy uint64 `json:"legacy"`
	// BrokenAt is the id of the first broken record, or null.
	BrokenAt *string `json:"broken_at"`
	// BrokenAtSeq is the position (seq) of the record BrokenAt names, or
	// null with it; unlike the id, it tells two copies of a record apart.
	BrokenAtSeq *uint64 `json:"broken_at_seq"`
	// Problem describes the first failed check; left out when none failed.
	Problem *VerifyProblem `json:"detail,omitempty"`
	// HeadSeq and HeadHash are the head the chain was checked against.
	HeadSeq  uint64 `json:"head_seq"`
	HeadHash string `json:"head_hash"`
	// AnchorPrevHash and AnchorSeq are where the check started.
	AnchorPrevHash string `json:"anchor_prev_hash"`
	AnchorSeq      uint64 `json:"anchor_seq"`
	// Checkpoint is the check against a signed checkpoint, when one was
	// asked for; left out otherwise.
	Checkpoint *VerifyCheckpoint `json:"checkpoint,omitempty"`
	DurationMS float64           `json:"duration_ms"`
}

// VerifyCheckpoint is the result of checking a chain against a signed
// checkpoint: the checkpoint's origin, size and root (base64), the root
// recomputed from the chain's first size records ("" when the chain is
// shorter or broke before), and whether they agree.
type VerifyCheckpoint struct {
	Origin         string `json:"origin"`
	Size           uint64 `json:"size"`
	Root           string `json:"root"`
	RecomputedRoot string `json:"recomputed_root"`
	Contained      bool   `json:"contained"`
}

// VerifyProblem is the first failed check of a chain.
type VerifyProblem struct {
	Seq      uint64 `json:"seq"`
	Kind     string `json:"kind"`
	Expected string `json:"expected,omitempty"`
	Got      string `json:"got,omitempty"`
	Message  string `json:"message"`
}
