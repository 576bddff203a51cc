package eventstore_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
)

// TestOpenLockedFolder: a second Open of a folder that is open fails with
// ErrLocked and says who holds it. (A second process gets EAGAIN from the
// lock; cmd/custos tests that with two real processes.)
func TestOpenLockedFolder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first, err := eventstore.Open(eventstore.Options{Dir: dir, CreateIfMissing: true})
	require.NoError(t, err)
	defer first.Close()
	second, err := eventstore.Open(eventstore.Options{Dir: dir})
	require.ErrorIs(t, err, eventstore.ErrLocked)
	require.Nil(t, second)
	assert.Contains(t, err.Error(), "eventstore: open "+dir+": another custos process holds "+dir)

	// Any other failure is not ErrLocked.
	_, err = eventstore.Open(eventstore.Options{Dir: t.TempDir() + "/missing"})
	require.Error(t, err)
	require.NotErrorIs(t, err, eventstore.ErrLocked)
}
