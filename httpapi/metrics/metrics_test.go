package metrics_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/httpapi/metrics"
)

func TestState(t *testing.T) {
	t.Parallel()
	now := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	cases := []struct {
		name string
		key  keys.Key
		want string
	}{
		{"active", keys.Key{ExpiresAt: now.Add(time.Hour)}, metrics.StateActive},
		{"expires this instant", keys.Key{ExpiresAt: now}, metrics.StateExpired},
		{"expired", keys.Key{ExpiresAt: now.Add(-time.Hour)}, metrics.StateExpired},
		{"revoked this instant", keys.Key{ExpiresAt: now.Add(time.Hour), RevokedAt: at(0)}, metrics.StateRevoked},
		{"inside rotation grace", keys.Key{ExpiresAt: now.Add(time.Hour), RevokedAt: at(time.Minute)}, metrics.StateActive},
		{"revoked and expired", keys.Key{ExpiresAt: now.Add(-time.Hour), RevokedAt: at(-2 * time.Hour)}, metrics.StateRevoked},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, metrics.State(tc.key, now))
			assert.Equal(t, tc.key.IsActive(now), tc.want == metrics.StateActive, "agrees with Key.IsActive")
		})
	}
}

type fixedKeys struct{}

func (fixedKeys) Keys() []keys.Key { return nil }
func (fixedKeys) Now() time.Time   { return time.Time{} }

func TestTrackOnce(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	require.NoError(t, m.Track(fixedKeys{}, nil))
	assert.ErrorIs(t, m.Track(fixedKeys{}, nil), metrics.ErrAlreadyTracking)
	_, err := m.Registry().Gather()
	require.NoError(t, err)
}
