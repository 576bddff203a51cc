package main

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/httpapi"
)

func TestConnectionCapKeepsFilesForTheStore(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		asked     int
		fileLimit uint64
		want      int
		err       string
	}{
		{"automatic under a high limit", 0, 1 << 20, httpapi.DefaultMaxConnections, ""},
		{"automatic under a low limit", 0, 256, 128, ""},
		{"automatic under a limit just above the default", 0, 1200, 1200 - maxFileReserve, ""},
		{"asked and affordable", 5000, 1 << 20, 5000, ""},
		{"asked beyond the limit", 300, 256, 0, "--max-connections 300 leaves too few open files for the store: the limit is 256 (ulimit -n) and 128 are kept for the store; raise the limit or set --max-connections 128 or less"},
		{"limit too low", 0, 1, 0, "the open-file limit (1) is too low to serve"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := connectionCap(tc.asked, tc.fileLimit)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestRaiseFileLimitReachesTheHardLimit(t *testing.T) {
	t.Parallel()
	got, err := raiseFileLimit()
	require.NoError(t, err)
	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	assert.Equal(t, lim.Max, lim.Cur, "soft limit raised to the hard one")
	assert.Equal(t, lim.Cur, got)
}
