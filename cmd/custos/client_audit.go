package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/custos-dev/custos/httpapi/client"
	"github.com/custos-dev/custos/httpapi/wire"
)

// errLiveChainBroken makes audit verify exit 1 after printing its report.
var errLiveChainBroken = errors.New("the server's chain is broken")

// newAuditCommand returns the audit parent command: the online reads and
// checks of a running server's audit trail.
func newAuditCommand(stdout, stderr io.Writer) *cobra.Command {
	parent := &cobra.Command{
		Use:   "audit",
		Short: "Read and check the audit trail of a server",
		Long: `audit reads the audit trail of a running server. To check a data folder
offline (server stopped), use custos verify --data DIR for its hash chain and
custos audit check --data DIR for who was allowed to do what.`,
	}
	parent.AddCommand(
		newAuditVerifyCommand(stdout),
		newAuditSessionCommand(stdout),
		newAuditEventsCommand(stdout),
		newAuditExportCommand(stdout, stderr),
		newAuditCheckCommand(stdout, stderr),
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
				"owner_role", deref(trail.OwnerRole),
				"owner_agent_id", deref(trail.OwnerAgentID),
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

// maxSeqParam is the largest seq the server accepts in after_seq, from_seq
// and to_seq.
const maxSeqParam = 1 << 63

// eventFilterFlags are the filter flags of audit events and audit export.
type eventFilterFlags struct {
	typ, keyID, agentID, agentRole, sessionID, sourceID, decision, from, to string
}

func (f *eventFilterFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.typ, "type", "", "only events of this type, e.g. decision.made or key.created")
	fl.StringVar(&f.keyID, "key-id", "", "only events about or caused by this key")
	fl.StringVar(&f.agentID, "agent-id", "", "only decisions (and agent changes) of this agent")
	fl.StringVar(&f.agentRole, "agent-role", "", "only decisions for this agent role")
	fl.StringVar(&f.sessionID, "session-id", "", "only decisions of this session")
	fl.StringVar(&f.sourceID, "source-id", "", "only decisions about this source")
	fl.StringVar(&f.decision, "decision", "", "only decisions with this outcome: ALLOW or DENY")
	fl.StringVar(&f.from, "from", "", "only events at or after this RFC 3339 time")
	fl.StringVar(&f.to, "to", "", "only events at or before this RFC 3339 time")
	_ = cmd.RegisterFlagCompletionFunc("decision", cobra.FixedCompletions(
		[]string{client.Allow, client.Deny}, cobra.ShellCompDirectiveNoFileComp))
}

// filter checks the flags and returns the filter, or one problem per bad
// flag.
func (f *eventFilterFlags) filter() (client.EventFilter, []string) {
	out := client.EventFilter{Type: f.typ, KeyID: f.keyID, AgentID: f.agentID, AgentRole: f.agentRole,
		SessionID: f.sessionID, SourceID: f.sourceID, Decision: strings.ToUpper(f.decision)}
	var problems []string
	if out.Decision != "" && out.Decision != client.Allow && out.Decision != client.Deny {
		problems = append(problems, fmt.Sprintf("--decision %q: want ALLOW or DENY", f.decision))
	}
	parse := func(name, raw string) time.Time {
		if raw == "" {
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339Nano, raw)
		if err != nil {
			problems = append(problems, fmt.Sprintf("--%s %q: want an RFC 3339 time such as 2030-01-31T12:00:00Z", name, raw))
		}
		return t
	}
	out.From, out.To = parse("from", f.from), parse("to", f.to)
	if !out.From.IsZero() && !out.To.IsZero() && out.To.Before(out.From) {
		problems = append(problems, "--to must not be before --from")
	}
	return out, problems
}

// badFlags reports every problem of a command's flags at once; exit 2.
func badFlags(problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	return withCode(2, errors.New(strings.Join(problems, "; ")))
}

// errIdle cancels a long read when the server sent nothing for --timeout.
var errIdle = errors.New("server idle for --timeout")

// idleContext returns a child of parent that is cancelled with errIdle when
// d passes without a call of touch; call stop when done. audit events --all
// and audit export use it instead of the session's context: they may run
// for long, so --timeout bounds how long the server may stay silent, not
// the whole command.
func idleContext(parent context.Context, d time.Duration) (ctx context.Context, touch, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	timer := time.AfterFunc(d, func() { cancel(errIdle) })
	return ctx, func() { timer.Reset(d) }, func() { timer.Stop(); cancel(context.Canceled) }
}

// failStream is fail for calls made under an idleContext, and for
// output errors: those are not the server's.
func (s *session) failStream(ctx context.Context, err, outErr error) error {
	switch {
	case outErr != nil:
		return withCode(2, outErr)
	case errors.Is(context.Cause(ctx), errIdle):
		return withCode(2, fmt.Errorf("the custos server at %s sent nothing for %s (--timeout): %w",
			s.client.BaseURL(), s.flags.timeout, err))
	}
	return s.fail(err, false)
}

func newAuditEventsCommand(stdout io.Writer) *cobra.Command {
	var f clientFlags
	var ff eventFilterFlags
	var afterSeq uint64
	var limit int
	var all bool
	cmd := &cobra.Command{
		Use:   "events [filters] [--after-seq N] [--limit N] [--all]",
		Short: "List the events of the audit trail, filtered, page by page",
		Long: `events lists the events of the server's audit trail in seq order, those that
match every filter given: one page of --limit events after --after-seq, or
with --all every page (following next_after_seq).

The table shows seq, time, type and actor, and for decision.made events the
decision, source and reason. -o json prints the page as the server answers it
({"events": [...], "next_after_seq": N or null}); with --all it prints one
JSON event per line (JSON Lines), as pages arrive.

When a page is not the last one, the table ends and stderr names the
--after-seq of the next page. With --all, --timeout bounds each wait for the
server, not the whole listing.

Exit codes: 0 success (also when nothing matches), 2 any error, including a
bad flag (checked before any request).`,
		Example: `  custos audit events --type decision.made --decision DENY --from 2030-01-01T00:00:00Z
  custos audit events --session-id sess-1 --all -o json | jq .payload.reason`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			filter, problems := ff.filter()
			if cmd.Flags().Changed("limit") && (limit < 1 || limit > client.MaxEventLimit) {
				problems = append(problems, fmt.Sprintf("--limit %d: want 1 to %d", limit, client.MaxEventLimit))
			}
			if afterSeq > maxSeqParam {
				problems = append(problems, fmt.Sprintf("--after-seq %d: want at most %d", afterSeq, uint64(maxSeqParam)))
			}
			if err := badFlags(problems); err != nil {
				return err
			}
			s, err := connect(cmd, &f, stdout)
			if err != nil {
				return err
			}
			defer s.close()
			q := client.EventQuery{EventFilter: filter, AfterSeq: afterSeq, Limit: limit}
			if !all {
				page, err := s.client.Events(s.ctx, q)
				if err != nil {
					return s.fail(err, false)
				}
				if s.json() {
					return s.printJSON(page)
				}
				t := newEventTable(stdout)
				for _, e := range page.Events {
					t.add(e)
				}
				if err := t.flush(); err != nil {
					return err
				}
				if page.NextAfterSeq != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "more events: add --after-seq %d for the next page, or --all\n", *page.NextAfterSeq)
				}
				return nil
			}

			ctx, touch, stop := idleContext(cmd.Context(), f.timeout)
			defer stop()
			bw := bufio.NewWriter(stdout)
			var outErr error
			var each func(wire.Event) error
			var done func() error
			if s.json() {
				enc := json.NewEncoder(bw)
				enc.SetEscapeHTML(false)
				each = func(e wire.Event) error { return enc.Encode(e) }
				done = bw.Flush
			} else {
				t := newEventTable(bw)
				each = func(e wire.Event) error {
					if t.add(e)%eventTableBlock == 0 {
						return t.flush()
					}
					return nil
				}
				done = func() error { return errors.Join(t.flush(), bw.Flush()) }
			}
			err = s.client.AllEvents(ctx, q, func(e wire.Event) error {
				touch()
				if err := each(e); err != nil {
					outErr = fmt.Errorf("write output: %w", err)
					return outErr
				}
				return nil
			})
			if err == nil {
				if err := done(); err != nil {
					outErr = fmt.Errorf("write output: %w", err)
				}
			} else if outErr == nil {
				_ = done() // show what arrived before the failure
			}
			if err != nil || outErr != nil {
				return s.failStream(ctx, err, outErr)
			}
			return nil
		},
	}
	ff.add(cmd)
	cmd.Flags().Uint64Var(&afterSeq, "after-seq", 0, "start after this seq (the next_after_seq of the previous page)")
	cmd.Flags().IntVar(&limit, "limit", 0, "events per page, 1 to 1000 (default: the server's, 100; with --all 1000)")
	cmd.Flags().BoolVar(&all, "all", false, "follow next_after_seq and list every matching event")
	addClientFlags(cmd, &f)
	return cmd
}

// eventTableBlock is how many rows audit events --all aligns and writes
// at a time, so that a long listing does not pile up in memory.
const eventTableBlock = 1000

// eventTable prints events as a table.
type eventTable struct {
	t    *table
	rows int
}

func newEventTable(w io.Writer) *eventTable {
	return &eventTable{t: newTable(w, "SEQ", "TIME", "TYPE", "ACTOR", "DECISION", "SOURCE_ID", "REASON")}
}

// add writes one row and returns the number of rows so far.
func (t *eventTable) add(e wire.Event) int {
	var decision, source, reason string
	if m, err := e.DecisionMade(); err == nil {
		decision, source, reason = m.Decision, m.Request.SourceID, m.Reason
	}
	t.t.row(fmt.Sprint(e.Seq), when(e.Time), e.Type, e.Actor, decision, source, reason)
	t.rows++
	return t.rows
}

func (t *eventTable) flush() error { return t.t.flush() }

func newAuditExportCommand(stdout, stderr io.Writer) *cobra.Command {
	var f clientFlags
	var ff eventFilterFlags
	var format, out, tenant string
	var fromSeq, toSeq uint64
	cmd := &cobra.Command{
		Use:   "export [--format jsonl|csv] [filters] [--from-seq N] [--to-seq N] [--out FILE] [--tenant ID]",
		Short: "Download the audit trail as JSONL (verifiable offline) or CSV",
		Long: `export streams the server's audit trail (GET /v1/audit/export), or the events
that match the filters, in seq order, to stdout or to --out FILE, in constant
memory. The server keeps running.

JSONL lines follow docs/export-format.md, the same lines as the offline
custos export: an export without filters (--from-seq/--to-seq allowed) checks
offline with custos verify --export FILE. A filtered export has gaps, which
verify reports as seq_gap, though every line still recomputes its own hash.
CSV has one row per event: the envelope, the main fields of decisions and
both hashes.

--out FILE must not exist; it is created, fsynced when complete, and removed
again when the export fails, so that no truncated file (which would verify
as a shorter chain) is left behind. With --out, a summary (file, format,
bytes, checkpoint) is printed as a table, or as JSON with -o json.

A whole-chain JSONL export to --out (no filters, --from-seq 1, --to-seq 0)
also writes FILE.checkpoint: the checkpoint of GET /v1/audit/checkpoint,
witness cosignatures included when the server has them, fetched before the
export starts so that the file contains its tree. FILE.checkpoint must not
exist either; it is fsynced, and removed with FILE when the export fails.
A server without checkpoints (404) gets none, with a line on stderr. Check
the pair against the verifier key pinned out of band:
  custos verify --export FILE --checkpoint FILE.checkpoint --vkey KEY [--witness-vkey W]

With a superadmin key, --tenant ID exports that tenant's chain (GET
/v1/tenants/ID/audit/export) and its checkpoint (GET
/v1/tenants/ID/audit/checkpoint); check it with the tenant's verifier key
(GET /v1/tenants/ID/audit/vkey, pinned out of band).

--timeout bounds each wait for the server, not the whole download.

Exit codes: 0 success, 2 any error, including a bad flag (checked before any
request).`,
		Example: `  custos audit export --out chain.jsonl && custos verify --export chain.jsonl
  custos audit export --format csv --type decision.made --decision DENY > denials.csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			filter, problems := ff.filter()
			if format != client.ExportJSONL && format != client.ExportCSV {
				problems = append(problems, fmt.Sprintf("--format %q: want jsonl or csv", format))
			}
			if fromSeq < 1 || fromSeq > maxSeqParam {
				problems = append(problems, fmt.Sprintf("--from-seq %d: want 1 to %d", fromSeq, uint64(maxSeqParam)))
			}
			if toSeq != 0 && (toSeq < fromSeq || toSeq > maxSeqParam) {
				problems = append(problems, fmt.Sprintf("--to-seq %d: want 0 (the head) or %d to %d", toSeq, fromSeq, uint64(maxSeqParam)))
			}
			// A whole-chain JSONL file gets the checkpoint beside it.
			cpOut := ""
			if out != "" && format == client.ExportJSONL && filter == (client.EventFilter{}) && fromSeq == 1 && toSeq == 0 {
				cpOut = out + ".checkpoint"
			}
			for _, name := range []string{out, cpOut} {
				if name == "" {
					continue
				}
				if _, err := os.Lstat(name); err == nil {
					problems = append(problems, fmt.Sprintf("--out %s: already exists", name))
				} else if !errors.Is(err, os.ErrNotExist) {
					problems = append(problems, fmt.Sprintf("--out %s: %v", name, err))
				}
			}
			if err := badFlags(problems); err != nil {
				return err
			}
			s, err := connect(cmd, &f, stdout)
			if err != nil {
				return err
			}
			defer s.close()

			// The checkpoint first: its size is then at most the export's
			// end, so that the export contains its tree.
			var cpNote []byte
			if cpOut != "" {
				if tenant != "" {
					cpNote, err = s.client.TenantCheckpoint(s.ctx, tenant)
				} else {
					cpNote, err = s.client.Checkpoint(s.ctx)
				}
				var apiErr *client.APIError
				if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
					fmt.Fprintf(stderr, "custos: the server has no checkpoint (%s); %s not written\n", escape(apiErr.Detail), cpOut)
					cpOut, err = "", nil
				}
				if err != nil {
					return s.fail(err, false)
				}
			}
			var file, cpFile *os.File
			// discard removes what was created when the export fails.
			discard := func() {
				for _, f := range []*os.File{file, cpFile} {
					if f != nil {
						_ = f.Close()
						_ = os.Remove(f.Name())
					}
				}
			}
			var w io.Writer = stdout
			if out != "" {
				// O_EXCL: a file created since the check above is not overwritten.
				if file, err = os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640); err != nil {
					return withCode(2, fmt.Errorf("--out: %w", err))
				}
				w = file
			}
			if cpOut != "" {
				if cpFile, err = os.OpenFile(cpOut, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640); err != nil {
					discard()
					return withCode(2, fmt.Errorf("--out: %w", err))
				}
			}
			ctx, touch, stop := idleContext(cmd.Context(), f.timeout)
			defer stop()
			tw := &touchWriter{w: w, touch: touch}
			q := client.ExportQuery{EventFilter: filter, Tenant: tenant, Format: format, FromSeq: fromSeq, ToSeq: toSeq}
			n, err := s.client.Export(ctx, q, tw)
			if err != nil {
				discard()
				return s.failStream(ctx, err, tw.err)
			}
			if file == nil {
				return nil
			}
			if err := syncClose(file); err != nil {
				file = nil
				discard()
				_ = os.Remove(out)
				return withCode(2, fmt.Errorf("--out: %w", err))
			}
			if cpFile != nil {
				_, err := cpFile.Write(cpNote)
				if err = errors.Join(err, syncClose(cpFile)); err != nil {
					_ = os.Remove(out)
					_ = os.Remove(cpOut)
					return withCode(2, fmt.Errorf("--out: %s: %w", cpOut, err))
				}
			}
			if s.json() {
				return s.printJSON(struct {
					Out        string `json:"out"`
					Format     string `json:"format"`
					Bytes      int64  `json:"bytes"`
					Checkpoint string `json:"checkpoint,omitempty"`
				}{out, format, n, cpOut})
			}
			pairs := []string{"out", out, "format", format, "bytes", fmt.Sprint(n)}
			if cpOut != "" {
				pairs = append(pairs, "checkpoint", cpOut)
			}
			return fields(stdout, pairs...)
		},
	}
	cmd.Flags().StringVar(&format, "format", client.ExportJSONL, "jsonl or csv")
	ff.add(cmd)
	cmd.Flags().Uint64Var(&fromSeq, "from-seq", 1, "first seq to export")
	cmd.Flags().Uint64Var(&toSeq, "to-seq", 0, "last seq to export (0: the head)")
	cmd.Flags().StringVar(&out, "out", "", "file to create (must not exist); default stdout")
	cmd.Flags().StringVar(&tenant, "tenant", "", "with a superadmin key: export this tenant's chain")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions(
		[]string{client.ExportJSONL, client.ExportCSV}, cobra.ShellCompDirectiveNoFileComp))
	addClientFlags(cmd, &f)
	return cmd
}

// touchWriter calls touch after every write, keeping an idleContext alive
// while data arrives, and keeps its own write error apart from the
// server's.
type touchWriter struct {
	w     io.Writer
	touch func()
	err   error
}

func (t *touchWriter) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	t.touch()
	if err != nil && t.err == nil {
		t.err = fmt.Errorf("write output: %w", err)
	}
	return n, err
}

// syncClose makes a file just written durable: it fsyncs the file, closes
// it and fsyncs its folder, so that the file's name survives a crash too.
func syncClose(file *os.File) error {
	err := file.Sync()
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return syncDir(filepath.Dir(file.Name()))
}

// syncDir fsyncs a folder, making a file just created in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
