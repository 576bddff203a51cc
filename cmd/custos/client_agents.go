package main

import (
	"context"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/custos-dev/custos/httpapi/client"
	"github.com/custos-dev/custos/httpapi/wire"
)

func newAgentsCommand(stdout io.Writer) *cobra.Command {
	parent := &cobra.Command{
		Use:   "agents",
		Short: "Register agents and manage their lifecycle on a server",
		Long: `agents manages the agent registry of a running server. An agent starts as
draft; only approved agents may be evaluated; suspended agents may be approved
again; retired is final.

Exit codes: 0 success, 1 get of an agent that does not exist, 2 any other
error (for example 409 for a transition the lifecycle does not allow).`,
	}
	parent.AddCommand(
		newAgentsRegisterCommand(stdout),
		newAgentsListCommand(stdout),
		newAgentsGetCommand(stdout),
		newAgentsUpdateCommand(stdout),
		newAgentStatusCommand(stdout, "approve", client.AgentApproved, "Approve an agent: it may be evaluated from now on"),
		newAgentStatusCommand(stdout, "suspend", client.AgentSuspended, "Suspend an approved agent: denied until approved again"),
		newAgentsRetireCommand(stdout),
	)
	return parent
}

func completeAgentIDs(f *clientFlags) cobra.CompletionFunc {
	return completeWith(f, func(ctx context.Context, c *client.Client) ([]string, error) {
		list, err := c.ListAgents(ctx, client.AgentFilter{})
		var ids []string
		for _, a := range list {
			ids = append(ids, a.AgentID+"\t"+a.AgentRole+" ("+a.Status+")")
		}
		return ids, err
	})
}

// agentFields are the descriptive flags of register and update.
type agentFields struct {
	role, displayName, description, owner, ownerTeam, framework, policy, policyID string
	permittedRoles                                                                []string
}

func (a *agentFields) add(fs *pflag.FlagSet) {
	fs.StringVar(&a.role, "role", "", "agent_role the agent acts as")
	fs.StringVar(&a.displayName, "display-name", "", "human name")
	fs.StringVar(&a.description, "description", "", "what the agent does")
	fs.StringVar(&a.owner, "owner", "", "person responsible")
	fs.StringVar(&a.ownerTeam, "owner-team", "", "team responsible")
	fs.StringVar(&a.framework, "framework", "", "agent framework, e.g. langgraph")
	fs.StringVar(&a.policy, "policy", "", "name of the policy the agent is bound to")
	fs.StringVar(&a.policyID, "policy-id", "", "policy_id of the policy the agent is bound to (resolved before --policy)")
	fs.StringSliceVar(&a.permittedRoles, "permitted-role", nil, "extra role the agent may act as (repeatable)")
}

func printAgent(s *session, a wire.Agent) error {
	if s.json() {
		return s.printJSON(a)
	}
	return fields(s.out,
		"agent_id", a.AgentID,
		"agent_role", a.AgentRole,
		"status", a.Status,
		"display_name", deref(a.DisplayName),
		"description", deref(a.Description),
		"owner", deref(a.Owner),
		"owner_team", deref(a.OwnerTeam),
		"framework", deref(a.Framework),
		"policy_name", deref(a.PolicyName),
		"policy_id", deref(a.PolicyID),
		"permitted_roles", strings.Join(a.PermittedRoles, ", "),
		"created_at", when(a.CreatedAt),
		"updated_at", when(a.UpdatedAt),
		"status_changed_at", when(a.StatusChangedAt))
}

func newAgentsRegisterCommand(stdout io.Writer) *cobra.Command {
	var f clientFlags
	var a agentFields
	var id string
	cmd := &cobra.Command{
		Use:   "register --role ROLE [--id AGENT_ID]",
		Short: "Register an agent (as draft)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := connect(cmd, &f, stdout)
			if err != nil {
				return err
			}
			defer s.close()
			agent, err := s.client.RegisterAgent(s.ctx, wire.RegisterAgentRequest{
				AgentID: id, AgentRole: a.role, DisplayName: a.displayName, Description: a.description,
				Owner: a.owner, OwnerTeam: a.ownerTeam, Framework: a.framework, PolicyName: a.policy,
				PolicyID: a.policyID, PermittedRoles: a.permittedRoles,
			})
			if err != nil {
				return s.fail(err, false)
			}
			return printAgent(s, agent)
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "agent_id (default: the server mints one)")
	a.add(cmd.Flags())
	_ = cmd.MarkFlagRequired("role")
	addClientFlags(cmd, &f)
	return cmd
}

func newAgentsListCommand(stdout io.Writer) *cobra.Command {
	var filter client.AgentFilter
	cmd := listCommand(stdout, "list [--framework F] [--owner O] [--status S]", "List agents, optionally filtered",
		func(s *session) ([]wire.Agent, error) { return s.client.ListAgents(s.ctx, filter) },
		[]string{"AGENT_ID", "AGENT_ROLE", "STATUS", "OWNER", "FRAMEWORK", "POLICY_NAME", "UPDATED_AT"},
		func(a wire.Agent) []string {
			return []string{a.AgentID, a.AgentRole, a.Status, deref(a.Owner), deref(a.Framework), deref(a.PolicyName), when(a.UpdatedAt)}
		})
	cmd.Flags().StringVar(&filter.Framework, "framework", "", "only agents of this framework")
	cmd.Flags().StringVar(&filter.Owner, "owner", "", "only agents of this owner")
	cmd.Flags().StringVar(&filter.Status, "status", "", "only agents in this status: draft, approved, suspended, retired")
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(
		[]string{client.AgentDraft, client.AgentApproved, client.AgentSuspended, client.AgentRetired},
		cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func newAgentsGetCommand(stdout io.Writer) *cobra.Command {
	return idCommand(stdout, "get AGENT_ID", "Show one agent (exit 1 when it does not exist)", true, completeAgentIDs,
		func(s *session, id string) (wire.Agent, error) { return s.client.GetAgent(s.ctx, id) }, printAgent)
}

func newAgentsUpdateCommand(stdout io.Writer) *cobra.Command {
	var f clientFlags
	var a agentFields
	cmd := &cobra.Command{
		Use:   "update AGENT_ID [--role R] [--owner O] ...",
		Short: "Change the given fields of an agent; the others keep their values",
		Long: `update sends only the flags given: an absent flag keeps the agent's value.
--policy "" (or --policy-id "") removes that binding.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := connect(cmd, &f, stdout)
			if err != nil {
				return err
			}
			defer s.close()
			set := func(name string, v *string) *string {
				if cmd.Flags().Changed(name) {
					return v
				}
				return nil
			}
			req := wire.UpdateAgentRequest{
				AgentRole:   set("role", &a.role),
				DisplayName: set("display-name", &a.displayName),
				Description: set("description", &a.description),
				Owner:       set("owner", &a.owner),
				OwnerTeam:   set("owner-team", &a.ownerTeam),
				Framework:   set("framework", &a.framework),
				PolicyName:  set("policy", &a.policy),
				PolicyID:    set("policy-id", &a.policyID),
			}
			if cmd.Flags().Changed("permitted-role") {
				roles := a.permittedRoles
				if roles == nil {
					roles = []string{}
				}
				req.PermittedRoles = &roles
			}
			agent, err := s.client.UpdateAgent(s.ctx, args[0], req)
			if err != nil {
				return s.fail(err, false)
			}
			return printAgent(s, agent)
		},
	}
	a.add(cmd.Flags())
	addClientFlags(cmd, &f)
	cmd.ValidArgsFunction = completeAgentIDs(&f)
	return cmd
}

func newAgentStatusCommand(stdout io.Writer, use, status, short string) *cobra.Command {
	return idCommand(stdout, use+" AGENT_ID", short, false, completeAgentIDs,
		func(s *session, id string) (wire.Agent, error) { return s.client.SetAgentStatus(s.ctx, id, status) }, printAgent)
}

func newAgentsRetireCommand(stdout io.Writer) *cobra.Command {
	return idCommand(stdout, "retire AGENT_ID", "Retire an agent for good", false, completeAgentIDs,
		func(s *session, id string) (wire.Agent, error) { return s.client.RetireAgent(s.ctx, id) }, printAgent)
}
