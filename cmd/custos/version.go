package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/custos-dev/custos/eventstore"
)

// buildInfo is what `custos version` prints.
type buildInfo struct {
	Version, Commit, GoVersion string
	Modified                   bool
	HashVersions               []uint16
}

// readBuildInfo reads the module version and the VCS stamp of the binary
// (go build stamps vcs.revision and vcs.modified in a git checkout; `go
// run` and test binaries may carry neither, which prints as unknown).
func readBuildInfo() buildInfo {
	b := buildInfo{Version: "(devel)", Commit: "unknown", GoVersion: runtime.Version()}
	// The verifier knows exactly the current encoding; older ones would be
	// listed here once there are any.
	b.HashVersions = []uint16{eventstore.HashVersion}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if v := info.Main.Version; v != "" {
		b.Version = v
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Commit = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

func (b buildInfo) write(w io.Writer) {
	commit := b.Commit
	if b.Modified {
		commit += " (modified)"
	}
	fmt.Fprintf(w, "custos %s\ncommit:        %s\ngo:            %s\nhash versions: %v\n",
		b.Version, commit, b.GoVersion, b.HashVersions)
}

func newVersionCommand(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, Go version and supported hash versions",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			readBuildInfo().write(stdout)
			return nil
		},
	}
}
