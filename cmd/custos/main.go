// Command custos governs what AI agents may retrieve and proves it
// afterwards. This package only wires: it parses flags, opens the store,
// builds the projections and the HTTP server, and maps errors to exit codes.
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// exitError carries a process exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// withCode wraps err so that main exits with code.
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line and returns the exit code: 0 success, 1 a
// negative result the caller asked about (broken chain, already
// initialised), 2 an error.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCommand(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "custos:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 2
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "custos",
		Short: "Govern what AI agents may retrieve, and prove it afterwards",
		Long: `custos decides whether AI agents may retrieve data (POST /v1/context/evaluate),
records every decision and credential change on a SHA-256 hash-chained log in
Pebble, and lets auditors verify that log offline.

Flags may also be set through CUSTOS_<FLAG> environment variables
(for example CUSTOS_DATA, CUSTOS_ADDR).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	// --version prints what `custos version` prints.
	var version strings.Builder
	readBuildInfo().write(&version)
	root.Version = version.String()
	root.SetVersionTemplate("{{.Version}}")
	root.AddCommand(
		newVersionCommand(stdout),
		newServeCommand(stdout, stderr),
		newInitCommand(stdout, stderr),
		newVerifyCommand(stdout, stderr),
		newAdminKeyCommand(stdout, stderr),
		newSuperadminKeyCommand(stdout, stderr),
		policiesCommand(stdout, stderr),
		newExportCommand(stdout, stderr),
		newReplayCommand(stdout, stderr),
		newLoadtestCommand(stdout, stderr),
		newKeysCommand(stdout, stderr),
		newAgentsCommand(stdout),
		newAuditCommand(stdout, stderr),
		newBackupCommand(stdout, stderr),
		newAlertsCommand(stdout, stderr),
		newWitnessCommand(stderr),
		newVkeyCommand(stdout),
	)
	return root
}

// newLogger logs JSON when w is not a terminal, text otherwise.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return slog.New(slog.NewTextHandler(w, opts))
		}
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
