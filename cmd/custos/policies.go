package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/custos-dev/custos/cmd/internal/policyfile"
)

// errInvalidPolicies makes `policies validate` exit 1 after listing problems.
var errInvalidPolicies = errors.New("policy files are invalid")

func newPoliciesCommand(stdout, stderr io.Writer) *cobra.Command {
	parent := &cobra.Command{
		Use:   "policies",
		Short: "Work with policy files (AutoPIL's YAML format)",
	}
	parent.AddCommand(&cobra.Command{
		Use:   "validate PATH",
		Short: "Check a policy file or a folder of them without a server",
		Long: `validate reads PATH (a YAML file, or a folder of *.yaml and *.yml files) as
custos serve --policies would, and lists every problem of every file at once
on stderr, as file:line: policies[i].field: problem.

Exit codes: 0 every policy is valid, 1 there are problems, 2 PATH cannot be
read.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			policies, err := policyfile.Load(args[0])
			if err != nil {
				var problem *policyfile.Problem
				if !errors.As(err, &problem) {
					return err
				}
				for _, line := range problemLines(err) {
					fmt.Fprintln(stderr, line)
				}
				return withCode(1, errInvalidPolicies)
			}
			fmt.Fprintf(stdout, "%d policies valid in %s\n", len(policies), args[0])
			return nil
		},
	})
	return parent
}

// problemLines lists the messages of a joined error, one per problem.
func problemLines(err error) []string {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range joined.Unwrap() {
			out = append(out, problemLines(e)...)
		}
		return out
	}
	return []string{err.Error()}
}
