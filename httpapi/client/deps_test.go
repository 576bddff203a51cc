package client_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestClientStaysLight: importing the client (and the wire types it
// shares with the server) must not pull in the HTTP framework, the store
// or anything else of the server side.
func TestClientStaysLight(t *testing.T) {
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH:", err)
	}
	out, err := exec.Command(goTool, "list", "-deps",
		"github.com/custos-dev/custos/httpapi/client", "github.com/custos-dev/custos/httpapi/wire").CombinedOutput()
	require.NoError(t, err, "%s", out)
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/custos-dev/custos/httpapi/wire")
	for _, dep := range deps {
		for _, forbidden := range []string{
			"github.com/labstack/echo", "github.com/cockroachdb/pebble", "github.com/ThreeDotsLabs/watermill",
			"github.com/prometheus/", "github.com/custos-dev/custos/eventstore", "github.com/custos-dev/custos/projections",
			"github.com/custos-dev/custos/verify", "github.com/custos-dev/custos/httpapi/metrics",
		} {
			require.False(t, dep == strings.TrimSuffix(forbidden, "/") || strings.HasPrefix(dep, forbidden),
				"httpapi/client depends on %s", dep)
		}
		require.NotEqual(t, "github.com/custos-dev/custos/httpapi", dep, "httpapi/client depends on httpapi")
	}
}
