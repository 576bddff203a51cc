package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/custos-dev/custos/httpapi/client"
)

// Client commands (keys, policies, agents, audit, backup online) talk to a
// running server over HTTP. They share these rules:
//
//   - the server comes from --server, else CUSTOS_SERVER, else
//     defaultServer;
//   - the API key comes only from CUSTOS_API_KEY: a flag would leak it into
//     shell history and the process list;
//   - output is a human table, or JSON with -o json;
//   - exit codes: 0 success, 1 the negative answer the command asks about
//     (get of something that does not exist, a broken chain), 2 every other
//     error (unreachable server, 401, 403, 409, 422, ...), message on stderr.

// defaultServer is the server client commands talk to by default.
const defaultServer = "http://127.0.0.1:8080"

// Environment variables of the client commands.
const (
	envServer = "CUSTOS_SERVER"
	envAPIKey = "CUSTOS_API_KEY"
)

// Output formats.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// clientFlags are the flags of every client command.
type clientFlags struct {
	server  string
	output  string
	timeout time.Duration
}

// addClientFlags adds --server, -o/--output and --timeout to cmd.
func addClientFlags(cmd *cobra.Command, f *clientFlags) {
	cmd.Flags().StringVar(&f.server, "server", defaultServer, "URL of the custos server (or "+envServer+")")
	cmd.Flags().StringVarP(&f.output, "output", "o", outputTable, "output format: table or json")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 30*time.Second, "give up on the server after this long")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(
		[]string{outputTable, outputJSON}, cobra.ShellCompDirectiveNoFileComp))
}

// session is one client command's connection to the server.
type session struct {
	flags  *clientFlags
	client *client.Client
	out    io.Writer
	// ctx bounds the command's calls by --timeout; call close when done.
	ctx    context.Context
	cancel context.CancelFunc
}

// close releases the session's context.
func (s *session) close() { s.cancel() }

// connect checks the flags, reads the key from the environment and returns
// a session. Its errors exit 2.
func connect(cmd *cobra.Command, f *clientFlags, stdout io.Writer) (*session, error) {
	if !cmd.Flags().Changed("server") {
		if v, ok := os.LookupEnv(envServer); ok && v != "" {
			f.server = v
		}
	}
	if f.output != outputTable && f.output != outputJSON {
		return nil, withCode(2, fmt.Errorf("-o %q: want table or json", f.output))
	}
	key := os.Getenv(envAPIKey)
	if key == "" {
		return nil, withCode(2, fmt.Errorf("%s is not set: export the API key to use (it is never read from a flag)", envAPIKey))
	}
	c, err := client.New(strings.TrimSpace(f.server), client.WithAPIKey(key), client.WithUserAgent("custos-cli"))
	if err != nil {
		return nil, withCode(2, fmt.Errorf("--server: %w", err))
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	return &session{flags: f, client: c, out: stdout, ctx: ctx, cancel: cancel}, nil
}

// json reports whether the user asked for JSON.
func (s *session) json() bool { return s.flags.output == outputJSON }

// printJSON writes v as indented JSON.
func (s *session) printJSON(v any) error {
	enc := json.NewEncoder(s.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// fail turns an error of a client call into the command's error: exit 1
// for a 404 when notFoundIsAnswer (a get), else exit 2.
func (s *session) fail(err error, notFoundIsAnswer bool) error {
	if err == nil {
		return nil
	}
	var apiErr *client.APIError
	if errors.As(err, &apiErr) {
		code := 2
		if notFoundIsAnswer && apiErr.Status == http.StatusNotFound {
			code = 1
		}
		return withCode(code, &serverError{apiErr})
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return withCode(2, fmt.Errorf("no answer from %s within %s: %w", s.client.BaseURL(), s.flags.timeout, err))
	}
	return withCode(2, fmt.Errorf("cannot reach the custos server at %s: %w", s.client.BaseURL(), err))
}

// serverError prints an answer of the server as "409 Conflict: detail".
type serverError struct{ e *client.APIError }

func (e *serverError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.e.Status, http.StatusText(e.e.Status), escape(e.e.Detail))
}
func (e *serverError) Unwrap() error { return e.e }

// table writes aligned columns; call flush when done.
type table struct{ w *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{w: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

// row writes one line. Every cell is escaped (see escape): it may come
// from the server, and a tab or line break would also break the columns.
func (t *table) row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
		cells[i] = escape(cells[i])
	}
	fmt.Fprintln(t.w, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.w.Flush() }

// fields writes name: value lines, aligned, for one object.
func fields(w io.Writer, pairs ...string) error {
	t := newTable(w)
	for i := 0; i+1 < len(pairs); i += 2 {
		t.row(pairs[i]+":", pairs[i+1])
	}
	return t.flush()
}

// when formats a time for tables: RFC 3339 in UTC, "" when zero or nil.
func when(t any) string {
	switch v := t.(type) {
	case time.Time:
		if v.IsZero() {
			return ""
		}
		return v.UTC().Format(time.RFC3339)
	case *time.Time:
		if v == nil {
			return ""
		}
		return when(*v)
	}
	return ""
}

// deref returns *s, or "" for nil.
func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func itoa(n int) string { return strconv.Itoa(n) }

// completeWith completes the first argument with ids listed by the server
// (using the same flags and CUSTOS_API_KEY); nothing when it is unreachable.
func completeWith(f *clientFlags, list func(context.Context, *client.Client) ([]string, error)) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		f.timeout = 3 * time.Second
		s, err := connect(cmd, f, io.Discard)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer s.close()
		ids, err := list(s.ctx, s.client)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return ids, cobra.ShellCompDirectiveNoFileComp
	}
}

// idCommand builds a `USE ID` command that calls one client method with the
// id and prints its answer: the shape of get, revoke, retire, delete and
// the status changes. With notFoundIsAnswer a 404 exits 1 (the command asked
// whether the thing exists); otherwise it is an error (exit 2).
func idCommand[T any](stdout io.Writer, use, short string, notFoundIsAnswer bool,
	complete func(*clientFlags) cobra.CompletionFunc,
	call func(s *session, id string) (T, error), print func(s *session, v T) error) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := connect(cmd, &f, stdout)
			if err != nil {
				return err
			}
			defer s.close()
			v, err := call(s, args[0])
			if err != nil {
				return s.fail(err, notFoundIsAnswer)
			}
			return print(s, v)
		},
	}
	addClientFlags(cmd, &f)
	if complete != nil {
		cmd.ValidArgsFunction = complete(&f)
	}
	return cmd
}

// listCommand builds a `list` command that fetches a list from the server
// and prints it as a table (header, one row per item) or, with -o json, as a
// JSON array (never null). Callers add their own filter flags to the
// returned command.
func listCommand[T any](stdout io.Writer, use, short string, call func(s *session) ([]T, error),
	header []string, row func(T) []string) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := connect(cmd, &f, stdout)
			if err != nil {
				return err
			}
			defer s.close()
			list, err := call(s)
			if err != nil {
				return s.fail(err, false)
			}
			if s.json() {
				if list == nil {
					list = []T{}
				}
				return s.printJSON(list)
			}
			t := newTable(stdout, header...)
			for _, v := range list {
				t.row(row(v)...)
			}
			return t.flush()
		},
	}
	addClientFlags(cmd, &f)
	return cmd
}
