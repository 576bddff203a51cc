package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// errLiveChainBroken makes audit verify exit 1 after printing its report.
var errLiveChainBroken = errors.New("the server's chain is broken")

// newAuditCommand returns the audit parent command. It holds the online
// checks of a running server; add further audit subcommands (events,
// export) to it.
func newAuditCommand(stdout io.Writer) *cobra.Command {
	parent := &cobra.Command{
		Use:   "audit",
		Short: "Read and check the audit trail of a server",
		Long: `audit reads the audit trail of a running server. To check a data folder
offline (server stopped), use custos verify --data DIR.`,
	}
	parent.AddCommand(
		newAuditVerifyCommand(stdout),
		newAuditSessionCommand(stdout),
	)
	return parent
}

func newAuditVerifyCommand(stdout io.Writer) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Have the server replay its live chain from genesis",
		Long: `verify asks the server to replay its hash chain from genesis, checking every
hash, link and sequence number, and prints the report.

Exit codes: 0 the chain is valid, 1 the chain is broken (the report names the
first broken event), 2 the check could not run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := connect(cmd, &f, stdout)
			if err != nil {
				return err
			}
			defer s.close()
			report, err := s.client.VerifyChain(s.ctx)
			if err != nil {
				return s.fail(err, false)
			}
			if s.json() {
				err = s.printJSON(report)
			} else {
				pairs := []string{
					"valid", yesNo(report.Valid),
					"events", fmt.Sprint(report.Total),
					"chained", fmt.Sprint(report.Chained),
					"head_seq", fmt.Sprint(report.HeadSeq),
					"head_hash", report.HeadHash,
				}
				if report.BrokenAt != nil {
					pairs = append(pairs, "broken_at", *report.BrokenAt)
				}
				if p := report.Problem; p != nil {
					pairs = append(pairs, "problem", fmt.Sprintf("seq %d: %s: %s", p.Seq, p.Kind, p.Message))
				}
				pairs = append(pairs, "duration_ms", fmt.Sprintf("%.1f", report.DurationMS))
				err = fields(stdout, pairs...)
			}
			if err != nil {
				return err
			}
			if !report.Valid {
				return withCode(1, errLiveChainBroken)
			}
			return nil
		},
	}
	addClientFlags(cmd, &f)
	return cmd
}

func newAuditSessionCommand(stdout io.Writer) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "session SESSION_ID",
		Short: "Show every decision of a session (exit 1 when it has none)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := connect(cmd, &f, stdout)
			if err != nil {
				return err
			}
			defer s.close()
			trail, err := s.client.SessionTrail(s.ctx, args[0])
			if err != nil {
				return s.fail(err, true)
			}
			if s.json() {
				return s.printJSON(trail)
			}
			if err := fields(stdout,
				"session_id", trail.SessionID,
				"owner_role", trail.OwnerRole,
				"owner_agent_id", trail.OwnerAgentID,
				"started_at", when(trail.StartedAt),
				"expires_at", when(trail.ExpiresAt),
				"decisions", fmt.Sprintf("%d (%d allowed, %d denied)", trail.TotalEvents, trail.Allowed, trail.Denied),
				"sources", strings.Join(trail.SourcesAccessed, ", "),
			); err != nil {
				return err
			}
			fmt.Fprintln(stdout)
			t := newTable(stdout, "SEQ", "TIME", "DECISION", "SOURCE_ID", "ACTION", "TASK_TYPE", "POLICY_NAME", "REASON")
			for _, e := range trail.Events {
				t.row(fmt.Sprint(e.Seq), when(e.Time), e.Decision, e.SourceID, e.Action, e.TaskType, e.PolicyName, e.Reason)
			}
			return t.flush()
		},
	}
	addClientFlags(cmd, &f)
	return cmd
}
