package metrics_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/httpapi/metrics"
)

func TestTrackVerify(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	valid, seq := true, uint64(41)
	require.NoError(t, m.TrackVerify(func() (bool, uint64) { return valid, seq }))
	gauge := func(name string) float64 {
		t.Helper()
		families, err := m.Registry().Gather()
		require.NoError(t, err)
		for _, f := range families {
			if f.GetName() == name {
				return f.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatalf("no %s", name)
		return 0
	}
	assert.Equal(t, 1.0, gauge("custos_verify_valid"))
	assert.Equal(t, 41.0, gauge("custos_verify_last_seq"))
	valid = false
	assert.Equal(t, 0.0, gauge("custos_verify_valid"))
}
