package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/custos-dev/custos/cmd/internal/policyfile"
	"github.com/custos-dev/custos/domain/policy"
	"github.com/custos-dev/custos/httpapi/client"
	"github.com/custos-dev/custos/httpapi/wire"
)

// addPolicyClientCommands adds the server-side policy commands to the
// policies parent command (which already holds the offline validate).
func addPolicyClientCommands(parent *cobra.Command, stdout, stderr io.Writer) {
	parent.Short = "Manage policies on a server, or check policy files offline"
	parent.AddCommand(
		newPoliciesListCommand(stdout),
		newPoliciesGetCommand(stdout),
		newPoliciesApplyCommand(stdout, stderr),
		newPoliciesDeleteCommand(stdout),
	)
}

func completePolicyIDs(f *clientFlags) cobra.CompletionFunc {
	return completeWith(f, func(ctx context.Context, c *client.Client) ([]string, error) {
		list, err := c.ListPolicies(ctx)
		var ids []string
		for _, p := range list {
			ids = append(ids, p.PolicyID+"\t"+p.Name+" ("+p.AgentRole+")")
		}
		return ids, err
	})
}

func newPoliciesListCommand(stdout io.Writer) *cobra.Command {
	return listCommand(stdout, "list", "List the policies of a server, by name",
		func(s *session) ([]wire.Policy, error) { return s.client.ListPolicies(s.ctx) },
		[]string{"NAME", "POLICY_ID", "AGENT_ROLE", "VERSION", "UPDATED_AT"},
		func(p wire.Policy) []string {
			return []string{p.Name, p.PolicyID, p.AgentRole, itoa(p.Version), when(p.UpdatedAt)}
		})
}

func printPolicy(s *session, p wire.Policy) error {
	if s.json() {
		return s.printJSON(p)
	}
	list := func(items []string) string { return strings.Join(items, ", ") }
	var maxSens, requireTask string
	if p.MaxSensitivity != nil {
		maxSens = p.MaxSensitivity.String()
	}
	if p.RequireTaskForSensitivity != nil {
		requireTask = p.RequireTaskForSensitivity.String()
	}
	actions := func(as []policy.Action) string {
		out := make([]string, len(as))
		for i, a := range as {
			out[i] = string(a)
		}
		return list(out)
	}
	return fields(s.out,
		"name", p.Name,
		"policy_id", p.PolicyID,
		"agent_role", p.AgentRole,
		"version", itoa(p.Version),
		"description", p.Description,
		"permitted_agent_ids", list(p.PermittedAgentIDs),
		"allowed_sources", list(p.AllowedSources),
		"denied_sources", list(p.DeniedSources),
		"allowed_tasks", list(p.AllowedTasks),
		"denied_tasks", list(p.DeniedTasks),
		"allowed_actions", actions(p.AllowedActions),
		"denied_actions", actions(p.DeniedActions),
		"max_sensitivity", maxSens,
		"require_task_for_sensitivity", requireTask,
		"task_bindings", countOf(len(p.TaskBindings)),
		"sensitivity_decay", countOf(len(p.SensitivityDecay)),
		"entitlement_rules", countOf(len(p.RequirePrincipalEntitlements)),
		"created_at", when(p.CreatedAt),
		"updated_at", when(p.UpdatedAt))
}

func countOf(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d (see -o json)", n)
}

func newPoliciesGetCommand(stdout io.Writer) *cobra.Command {
	return idCommand(stdout, "get POLICY_ID", "Show one policy (exit 1 when it does not exist)", true, completePolicyIDs,
		func(s *session, id string) (wire.Policy, error) { return s.client.GetPolicy(s.ctx, id) }, printPolicy)
}

func newPoliciesDeleteCommand(stdout io.Writer) *cobra.Command {
	return idCommand(stdout, "delete POLICY_ID", "Delete a policy; its role is denied from then on", false, completePolicyIDs,
		func(s *session, id string) (wire.Policy, error) { return s.client.DeletePolicy(s.ctx, id) },
		func(s *session, p wire.Policy) error {
			if s.json() {
				return s.printJSON(p)
			}
			_, err := fmt.Fprintf(s.out, "deleted policy %s (%s, version %d)\n", escape(p.PolicyID), escape(p.Name), p.Version)
			return err
		})
}

// Actions of policies apply.
const (
	applyCreated   = "created"
	applyUpdated   = "updated"
	applyUnchanged = "unchanged"
	applyFailed    = "failed"
)

// applyResult is what apply did with one policy of the file.
type applyResult struct {
	Action   string `json:"action"`
	Name     string `json:"name"`
	PolicyID string `json:"policy_id,omitempty"`
	Version  int    `json:"version,omitempty"`
	Error    string `json:"error,omitempty"`
}

func newPoliciesApplyCommand(stdout, stderr io.Writer) *cobra.Command {
	var f clientFlags
	var file string
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Create or update the policies of a policy file on a server",
		Long: `apply reads FILE (AutoPIL's format, in YAML or JSON; a folder of *.yaml files;
or - for stdin), checks every policy locally as 'policies validate' does, then
for each policy in order:

  - with a policy_id: updates that policy, or creates it with that id;
  - without: updates the policy with the same name, or creates a new one.

A policy whose content already matches is left alone (no event is appended).
Policies on the server that the file does not mention are kept: apply never
deletes (custos serve --policies makes the server equal a folder).

Exit codes: 0 every policy applied, 2 the file is invalid or any policy
failed (the others are still applied; the table says which).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			desired, err := loadPolicyFile(file, cmd.InOrStdin())
			if err != nil {
				var problem *policyfile.Problem
				if errors.As(err, &problem) {
					for _, line := range problemLines(err) {
						fmt.Fprintln(stderr, line)
					}
					return withCode(2, errInvalidPolicies)
				}
				return withCode(2, err)
			}
			s, err := connect(cmd, &f, stdout)
			if err != nil {
				return err
			}
			defer s.close()
			results, err := applyPolicies(s, desired)
			if err != nil {
				return s.fail(err, false)
			}
			failed := 0
			for _, r := range results {
				if r.Action == applyFailed {
					failed++
				}
			}
			if s.json() {
				if err := s.printJSON(results); err != nil {
					return err
				}
			} else {
				t := newTable(stdout, "ACTION", "NAME", "POLICY_ID", "VERSION", "ERROR")
				for _, r := range results {
					version := ""
					if r.Version > 0 {
						version = itoa(r.Version)
					}
					t.row(r.Action, r.Name, r.PolicyID, version, r.Error)
				}
				if err := t.flush(); err != nil {
					return err
				}
			}
			if failed > 0 {
				return withCode(2, fmt.Errorf("%d of %d policies failed to apply", failed, len(results)))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "policy file (YAML or JSON), folder of YAML files, or - for stdin (required)")
	_ = cmd.MarkFlagRequired("file")
	_ = cmd.MarkFlagFilename("file", "yaml", "yml", "json")
	addClientFlags(cmd, &f)
	return cmd
}

// loadPolicyFile reads path ("-": stdin) with the policyfile rules.
func loadPolicyFile(path string, stdin io.Reader) ([]wire.Policy, error) {
	if path != "-" {
		return policyfile.Load(path)
	}
	data, err := io.ReadAll(stdin)
	if err != nil {
		return nil, fmt.Errorf("read stdin: %w", err)
	}
	return policyfile.Parse("<stdin>", data)
}

// applyPolicies creates or updates each of desired, in order. Failures of
// single policies are results; only failing to list the current policies is
// an error.
func applyPolicies(s *session, desired []wire.Policy) ([]applyResult, error) {
	current, err := s.client.ListPolicies(s.ctx)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]wire.Policy, len(current))
	byName := make(map[string]wire.Policy, len(current))
	for _, p := range current {
		byID[p.PolicyID], byName[p.Name] = p, p
	}
	results := make([]applyResult, 0, len(desired))
	for _, want := range desired {
		res := applyResult{Name: want.Name, PolicyID: want.PolicyID}
		old, found := byID[want.PolicyID]
		if want.PolicyID == "" {
			old, found = byName[want.Name]
		}
		var got wire.Policy
		switch {
		case found && sameContent(old, want):
			res.Action, got = applyUnchanged, old
		case found:
			res.Action = applyUpdated
			got, err = s.client.UpdatePolicy(s.ctx, old.PolicyID, want)
		default:
			res.Action = applyCreated
			got, err = s.client.CreatePolicy(s.ctx, want)
		}
		if err != nil {
			var apiErr *client.APIError
			if !errors.As(err, &apiErr) {
				return nil, err // the server is gone: stop
			}
			res.Action, res.Error = applyFailed, (&serverError{apiErr}).Error()
			err = nil
		} else {
			res.PolicyID, res.Version = got.PolicyID, got.Version
			byID[got.PolicyID], byName[got.Name] = got, got
		}
		results = append(results, res)
	}
	return results, nil
}

// sameContent reports whether the server's policy have equals want, apart
// from what the server manages (version, times) and a policy_id want leaves
// to the server. It compares the JSON both would send.
func sameContent(have, want wire.Policy) bool {
	if want.PolicyID == "" {
		want.PolicyID = have.PolicyID
	}
	a, errA := contentJSON(have)
	b, errB := contentJSON(want)
	return errA == nil && errB == nil && bytes.Equal(a, b)
}

func contentJSON(p wire.Policy) ([]byte, error) {
	p.Version = 0
	p.CreatedAt, p.UpdatedAt = time.Time{}, time.Time{}
	return json.Marshal(p)
}

// policiesCommand is the policies parent: validate (offline, policies.go)
// and the server-side commands.
func policiesCommand(stdout, stderr io.Writer) *cobra.Command {
	parent := newPoliciesCommand(stdout, stderr)
	addPolicyClientCommands(parent, stdout, stderr)
	return parent
}
