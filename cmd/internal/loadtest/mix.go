package loadtest

import (
	"encoding/json"
	"fmt"
)

// Decisions as custos answers them.
const (
	decisionAllow = "ALLOW"
	decisionDeny  = "DENY"
)

// role is one load-test role: its policy and the requests its connections
// send. The policy has three allowed sources, one denied source, two
// allowed tasks of which the second is bound to the first source, a
// ceiling, a session TTL and a decay step.
type role struct {
	name     string // short name: role loadtest_<name>, agent loadtest-<name>
	allowed  [3]string
	denied   string
	outside  string // a source in no list of the policy
	tasks    [2]string
	ceiling  string // "high" or "medium"
	above    string // the level right above ceiling
	requireT bool   // require_task_for_sensitivity: high (ceiling high only)
}

func (r role) agentRole() string { return "loadtest_" + r.name }
func (r role) agentID() string   { return "loadtest-" + r.name }
func (r role) policyName() string {
	return "loadtest-" + r.name + "-policy"
}

// roles are the load-test roles; connection i has roles[i%len(roles)].
var roles = []role{
	{name: "lending", allowed: [3]string{"crm", "credit_bureau", "core_banking"}, denied: "hr_records",
		outside: "marketing_lists", tasks: [2]string{"loan_review", "kyc"}, ceiling: "high", above: "critical", requireT: true},
	{name: "claims", allowed: [3]string{"claims_db", "policy_admin", "repair_estimates"}, denied: "payroll",
		outside: "trading_desk", tasks: [2]string{"claim_triage", "fraud_check"}, ceiling: "high", above: "critical"},
	{name: "support", allowed: [3]string{"ticketing", "kb_articles", "order_history"}, denied: "payment_vault",
		outside: "credit_bureau", tasks: [2]string{"answer_ticket", "refund"}, ceiling: "medium", above: "high"},
	{name: "fraud", allowed: [3]string{"transactions", "device_graph", "watchlists"}, denied: "employee_directory",
		outside: "kb_articles", tasks: [2]string{"investigate", "sar_filing"}, ceiling: "high", above: "critical", requireT: true},
	{name: "hr", allowed: [3]string{"hris", "payroll", "benefits"}, denied: "medical_records",
		outside: "transactions", tasks: [2]string{"onboarding", "payroll_run"}, ceiling: "medium", above: "high"},
}

// policySpec is the policy document a role's policy is created with, in
// custos' wire format.
type policySpec struct {
	Name                      string        `json:"name"`
	AgentRole                 string        `json:"agent_role"`
	Description               string        `json:"description"`
	AllowedSources            []string      `json:"allowed_sources"`
	DeniedSources             []string      `json:"denied_sources"`
	AllowedTasks              []string      `json:"allowed_tasks"`
	TaskBindings              []taskBinding `json:"task_bindings"`
	MaxSensitivity            string        `json:"max_sensitivity"`
	RequireTaskForSensitivity string        `json:"require_task_for_sensitivity,omitempty"`
	SessionTTLMinutes         int           `json:"session_ttl_minutes"`
	SensitivityDecay          []decayStep   `json:"sensitivity_decay"`
}

type taskBinding struct {
	Task             string   `json:"task"`
	PermittedSources []string `json:"permitted_sources"`
}

type decayStep struct {
	AfterMinutes   int    `json:"after_minutes"`
	MaxSensitivity string `json:"max_sensitivity"`
}

func (r role) policy() policySpec {
	decayTo := "medium"
	if r.ceiling == "medium" {
		decayTo = "low"
	}
	p := policySpec{
		Name:              r.policyName(),
		AgentRole:         r.agentRole(),
		Description:       "custos loadtest role " + r.name + "; safe to delete",
		AllowedSources:    r.allowed[:],
		DeniedSources:     []string{r.denied},
		AllowedTasks:      r.tasks[:],
		TaskBindings:      []taskBinding{{Task: r.tasks[1], PermittedSources: []string{r.allowed[0]}}},
		MaxSensitivity:    r.ceiling,
		SessionTTLMinutes: 120,
		SensitivityDecay:  []decayStep{{AfterMinutes: 60, MaxSensitivity: decayTo}},
	}
	if r.requireT {
		p.RequireTaskForSensitivity = "high"
	}
	return p
}

// template is one request shape of a role and the decision custos is
// expected to answer.
type template struct {
	source, level, task string
	want                string
}

// templates returns the role's request shapes: six ALLOW and four DENY
// (explicitly denied source, source outside the allowed list, sensitivity
// above the ceiling, task bound to another source), so a uniform pick gives
// 60% ALLOW.
func (r role) templates() []template {
	a, t := r.allowed, r.tasks
	return []template{
		{a[0], "low", "", decisionAllow},
		{a[1], "medium", t[0], decisionAllow},
		{a[2], r.ceiling, t[0], decisionAllow},
		{a[0], "medium", t[1], decisionAllow},
		{a[2], "low", "", decisionAllow},
		{a[1], "low", t[0], decisionAllow},
		{r.denied, "low", "", decisionDeny},
		{r.outside, "low", "", decisionDeny},
		{a[0], r.above, t[0], decisionDeny},
		{a[2], "low", t[1], decisionDeny},
	}
}

// evaluateRequest is the body of POST /v1/context/evaluate.
type evaluateRequest struct {
	AgentRole        string   `json:"agent_role"`
	AgentID          string   `json:"agent_id"`
	UserID           string   `json:"user_id"`
	SourceID         string   `json:"source_id"`
	SensitivityLevel string   `json:"sensitivity_level"`
	SessionID        string   `json:"session_id"`
	TaskType         string   `json:"task_type,omitempty"`
	Action           string   `json:"action,omitempty"`
	Query            string   `json:"query,omitempty"`
	PrincipalClaims  []string `json:"principal_claims,omitempty"`
}

// evaluateResponse is the part of the answer the load test reads.
type evaluateResponse struct {
	Decision string `json:"decision"`
}

// body is one pre-encoded request and its expected decision.
type body struct {
	json []byte
	want string
}

// sessionsPerConnection is how many sessions each connection keeps.
const sessionsPerConnection = 4

// connectionBodies returns the pre-encoded bodies of connection conn: every
// template of its role for each of its sessions, indexed
// [session*len(templates)+template].
func connectionBodies(runID string, conn int, r role) ([]body, error) {
	ts := r.templates()
	out := make([]body, 0, sessionsPerConnection*len(ts))
	for s := range sessionsPerConnection {
		session := fmt.Sprintf("lt-%s-c%d-s%d", runID, conn, s)
		for i, t := range ts {
			req := evaluateRequest{
				AgentRole:        r.agentRole(),
				AgentID:          r.agentID(),
				UserID:           fmt.Sprintf("u-%d", (conn*7+s*3+i)%50),
				SourceID:         t.source,
				SensitivityLevel: t.level,
				SessionID:        session,
				TaskType:         t.task,
				Action:           "read",
				Query:            "records for case " + fmt.Sprint(1000+conn*10+i),
			}
			b, err := json.Marshal(req)
			if err != nil {
				return nil, err
			}
			out = append(out, body{json: b, want: t.want})
		}
	}
	return out, nil
}
