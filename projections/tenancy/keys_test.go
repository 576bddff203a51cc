package tenancy_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/tenants"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/checkpoint"
)

// TestDeploymentChainsKeepTheDeploymentKey ties the chains that
// checkpoint.ForChain leaves on the deployment key to the registry's: the
// system chain and tenant default, whose checkpoints in folders written
// before chain keys the deployment key signed. Any other tenant gets a key
// of its own.
func TestDeploymentChainsKeepTheDeploymentKey(t *testing.T) {
	t.Parallel()
	require.True(t, checkpoint.UsesDeploymentKey(tenants.SystemChain))
	require.True(t, checkpoint.UsesDeploymentKey(tenants.DefaultID))
	require.Equal(t, eventstore.DefaultChain, tenants.DefaultID)
	require.False(t, checkpoint.UsesDeploymentKey("acme"))
}
