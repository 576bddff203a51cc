package projections_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSidesImportInOneDirection keeps the write side and the read side
// apart: neither imports the other, and replay, which both use, imports
// neither. Test files may cross (a read-side test writes through the
// Ledger); code may not.
func TestSidesImportInOneDirection(t *testing.T) {
	t.Parallel()
	const module = "github.com/custos-dev/custos/projections/"
	forbidden := map[string][]string{
		"writeside": {"readside"},
		"readside":  {"writeside"},
		"replay":    {"writeside", "readside"},
	}
	for pkg, banned := range forbidden {
		files, err := filepath.Glob(filepath.Join(pkg, "*.go"))
		require.NoError(t, err)
		require.NotEmpty(t, files, pkg)
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ImportsOnly)
			require.NoError(t, err)
			for _, imp := range f.Imports {
				path, err := strconv.Unquote(imp.Path.Value)
				require.NoError(t, err)
				for _, b := range banned {
					require.NotEqual(t, module+b, path, "%s imports %s", file, path)
				}
			}
		}
	}
}
