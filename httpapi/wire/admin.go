package wire

import (
	"time"

	"github.com/custos-dev/custos/domain/policy"
)

// Policy is the body of POST and PUT /v1/policies and the answer of every
// /v1/policies route (GET /v1/policies: a bare array, sorted by name). The
// policy document is its own wire format: AutoPIL's field names, which
// teams already write in YAML, are the contract
// (docs/policy-semantics.md). version, created_at and updated_at are set
// by the server and ignored on input.
type Policy = policy.Policy

// BackupRequest is the body of POST /v1/admin/backup.
type BackupRequest struct {
	// Name is the folder the copy is written to, under the server's backup
	// folder: ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ without "..", not
	// existing yet.
	Name string `json:"name"`
	// Out was a path on the server's machine. It is refused with a 422
	// that says to use name.
	Out *string `json:"out,omitempty"`
}

// BackupResult answers POST /v1/admin/backup with 201.
type BackupResult struct {
	// Name is the backup's name, as asked.
	Name string `json:"name"`
	// Out is the folder the server wrote the copy to: its backup folder
	// joined with Name.
	Out        string  `json:"out"`
	DurationMS float64 `json:"duration_ms"`
}

// Status answers the probes GET /healthz ("ok") and GET /readyz
// ("ready"). Role is set on /readyz by a node of a cluster: "sequencer"
// while it sequences a chain, else "follower".
type Status struct {
	Status string `json:"status"`
	Role   string `json:"role,omitempty"`
}

// ErrorBody is the body of every answer with a status of 400 or more:
// exactly {"detail": "..."}.
type ErrorBody struct {
	Detail string `json:"detail"`
}

// Tables is every key, policy and agent of a state at one instant, each in
// the shape GET /v1/keys, /v1/policies and /v1/agents answer (is_active
// computed at that instant); `custos replay` prints it.
type Tables struct {
	AsOf     time.Time `json:"as_of"`
	Keys     []Key     `json:"keys"`
	Policies []Policy  `json:"policies"`
	Agents   []Agent   `json:"agents"`
}
