package domain_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/agents"
	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/domain/policy"
)

// TestEvaluateCases runs the evaluation cases in testdata/evaluate, in
// pebble's datadriven format: each file is one world, built and asked in
// order, so a new rule or reason string is a new case in a file. Commands:
//
//	policy                  body: a policy as JSON (the API's shape)
//	delete-policy name=N
//	agent [status=S]        body: an agent registration as JSON; S is
//	                        draft (default), approved or suspended
//	evaluate [at=DURATION] [key-agent=ID]
//	                        body: an evaluate request as JSON (user_id
//	                        defaults to u-1; the rest is checked as the
//	                        API checks it); at is the
//	                        time after the world's start (default 0s);
//	                        key-agent binds the calling key to an agent
//
// evaluate prints "DECISION policy_name", then the denial type and the
// policy resolution when set, and the reason on the next line. Run with
// -rewrite to regenerate the expected output after a deliberate change,
// then read the diff.
func TestEvaluateCases(t *testing.T) {
	t.Parallel()
	datadriven.Walk(t, filepath.Join("testdata", "evaluate"), func(t *testing.T, path string) {
		w := newWorld(t)
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			return runEvaluateCase(t, w, d)
		})
	})
}

func runEvaluateCase(t *testing.T, w *world, d *datadriven.TestData) string {
	switch d.Cmd {
	case "policy":
		var p policy.Policy
		require.NoError(t, json.Unmarshal([]byte(d.Input), &p), d.Pos)
		created, err := policy.Create(w.state.Policies, p, t0, "pol_"+p.Name)
		if err != nil {
			return "error: " + err.Error() + "\n"
		}
		w.apply(created)
		return "ok\n"
	case "delete-policy":
		var name string
		d.ScanArgs(t, "name", &name)
		deleted, err := policy.Delete(w.state.Policies, "pol_"+name, t0)
		require.NoError(t, err, d.Pos)
		w.apply(deleted)
		return "ok\n"
	case "agent":
		var a agents.Agent
		require.NoError(t, json.Unmarshal([]byte(d.Input), &a), d.Pos)
		status := string(agents.StatusDraft)
		if d.HasArg("status") {
			d.ScanArgs(t, "status", &status)
		}
		a.Status = agents.Status(status)
		w.agent(a)
		return "ok\n"
	case "evaluate":
		req := policy.Request{UserID: "u-1"} // recorded only
		require.NoError(t, json.Unmarshal([]byte(d.Input), &req), d.Pos)
		if err := decision.ValidateRequest(req); err != nil {
			return "invalid request: " + err.Error() + "\n"
		}
		var at time.Duration
		if d.HasArg("at") {
			var s string
			d.ScanArgs(t, "at", &s)
			var err error
			at, err = time.ParseDuration(s)
			require.NoError(t, err, d.Pos)
		}
		var keyAgent string
		if d.HasArg("key-agent") {
			d.ScanArgs(t, "key-agent", &keyAgent)
		}
		return formatDecision(w.eval(req, keyAgent, t0.Add(at)))
	}
	d.Fatalf(t, "unknown command %q", d.Cmd)
	return ""
}

func formatDecision(m decision.Made) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", m.Decision, m.PolicyName)
	if m.DenialType != "" {
		fmt.Fprintf(&b, " denial_type=%s", m.DenialType)
	}
	if m.PolicyResolution != "" {
		fmt.Fprintf(&b, " resolution=%s", m.PolicyResolution)
	}
	fmt.Fprintf(&b, "\n%s\n", m.Reason)
	return b.String()
}
