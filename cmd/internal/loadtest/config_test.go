package loadtest_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/cmd/internal/loadtest"
)

func validConfig() loadtest.Config {
	c := loadtest.DefaultConfig()
	c.APIKey = "cst_test"
	return c
}

func TestDefaultConfigNeedsOnlyAKey(t *testing.T) {
	t.Parallel()
	c := loadtest.DefaultConfig()
	assert.Equal(t, "http://127.0.0.1:8080", c.Server)
	assert.Equal(t, 64, c.Connections)
	assert.Equal(t, 10*time.Second, c.Duration)
	assert.Equal(t, time.Second, c.Warmup)
	assert.False(t, c.SkipBaseline)
	err := c.Validate()
	require.ErrorIs(t, err, loadtest.ErrInvalidConfig)
	assert.Contains(t, err.Error(), "CUSTOS_API_KEY")
	require.NoError(t, validConfig().Validate())
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	c := loadtest.Config{Server: "ftp://10.1.2.3:21/?q=1", Connections: 1025, Duration: 11 * time.Minute, Warmup: -time.Second}
	err := c.Validate()
	require.Error(t, err)
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		ce, ok := errors.AsType[*loadtest.ConfigError](e)
		require.True(t, ok, "%v is a *ConfigError", e)
		assert.ErrorIs(t, e, loadtest.ErrInvalidConfig)
		fields = append(fields, ce.Field)
	}
	assert.Equal(t, []string{"server", "server", "server", "api_key", "connections", "duration", "warmup"}, fields)
	assert.ErrorIs(t, err, loadtest.ErrNotLoopback)
	for _, want := range []string{"scheme must be http or https", "host 10.1.2.3 is not a loopback address",
		"1025 is out of range 1..1024", "11m0s is out of range 1s..10m0s", "-1s is out of range"} {
		assert.Contains(t, err.Error(), want)
	}

	zero := loadtest.Config{}.Validate()
	for _, want := range []string{"server", "api_key", "connections: 0", "duration: 0s"} {
		assert.Contains(t, zero.Error(), want, "zero values are problems, not silent defaults")
	}
	assert.NotContains(t, zero.Error(), "warmup", "zero warmup means none")
}

func TestValidateAcceptsLoopbackOnly(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, server string
		ok           bool
	}{
		{"ipv4 loopback", "http://127.0.0.1:8080", true},
		{"anywhere in 127/8", "http://127.9.8.7:1", true},
		{"ipv6 loopback", "http://[::1]:8080", true},
		{"localhost", "http://localhost:8080", true},
		{"localhost upper case, https, path", "https://LOCALHOST/custos/", true},
		{"private address", "http://10.0.0.1:8080", false},
		{"all interfaces", "http://0.0.0.0:8080", false},
		{"public name", "http://example.com", false},
		{"name that resolves to loopback elsewhere", "http://localhost.example.com", false},
		{"ipv6 unspecified", "http://[::]:8080", false},
		{"no host", "http://:8080", false},
		{"no scheme", "127.0.0.1:8080", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			c.Server = tc.server
			err := c.Validate()
			if tc.ok {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, loadtest.ErrInvalidConfig)
		})
	}
	for _, host := range []string{"10.0.0.1", "0.0.0.0", "example.com", "::"} {
		c := validConfig()
		c.Server = "http://" + host
		if host == "::" {
			c.Server = "http://[::]"
		}
		assert.ErrorIs(t, c.Validate(), loadtest.ErrNotLoopback, host)
	}
}

func TestRunRefusesAnInvalidConfigBeforeAnyRequest(t *testing.T) {
	t.Parallel()
	c := validConfig()
	c.Server = "http://192.0.2.1:8080" // TEST-NET-1: a dial would hang, not fail
	res, err := c.Run(t.Context())
	require.ErrorIs(t, err, loadtest.ErrNotLoopback)
	assert.Empty(t, res.RunID)
}

func TestValidateBulkSetupAndSoak(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		change func(*loadtest.Config)
		want   string // "" valid
	}{
		{"defaults", func(*loadtest.Config) {}, ""},
		{"bulk setup", func(c *loadtest.Config) { c.SetupKeys, c.SetupPolicies = 1_000_000, 100_000 }, ""},
		{"too many keys", func(c *loadtest.Config) { c.SetupKeys = 1_000_001 }, "setup_keys: 1000001 is out of range"},
		{"too many policies", func(c *loadtest.Config) { c.SetupPolicies = 100_001 }, "setup_policies: 100001 is out of range"},
		{"bulk without connections", func(c *loadtest.Config) { c.SetupKeys, c.SetupConnections = 1, 0 }, "setup_connections: 0"},
		{"bulk without a timeout", func(c *loadtest.Config) { c.SetupKeys, c.SetupTimeout = 1, 0 }, "setup_timeout: 0s"},
		{"no bulk: its settings are not checked", func(c *loadtest.Config) { c.SetupConnections, c.SetupTimeout = 0, 0 }, ""},
		{"soak at a rate", func(c *loadtest.Config) { c.Soak, c.Rate = 30*time.Minute, 5000 }, ""},
		{"soak at half the probe", func(c *loadtest.Config) { c.Soak, c.RateFraction = time.Minute, 0.5 }, ""},
		{"soak without a rate", func(c *loadtest.Config) { c.Soak = time.Minute }, "exactly one of a rate and a rate fraction"},
		{"soak with both", func(c *loadtest.Config) { c.Soak, c.Rate, c.RateFraction = time.Minute, 1, 0.5 }, "exactly one"},
		{"rate without a soak", func(c *loadtest.Config) { c.Rate = 100 }, "a rate needs a soak"},
		{"negative rate", func(c *loadtest.Config) { c.Soak, c.Rate = time.Minute, -1 }, "rate: -1 is out of range"},
		{"fraction above one", func(c *loadtest.Config) { c.Soak, c.RateFraction = time.Minute, 1.5 }, "rate_fraction: 1.5 is out of range"},
		{"soak too long", func(c *loadtest.Config) { c.Soak, c.Rate = 13*time.Hour, 1 }, "soak: 13h0m0s is out of range"},
		{"interval too short", func(c *loadtest.Config) { c.Soak, c.Rate, c.SoakInterval = time.Minute, 1, time.Millisecond }, "soak_interval: 1ms"},
		{"negative pid", func(c *loadtest.Config) { c.ServerPID = -1 }, "server_pid: -1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tc.change(&c)
			err := c.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, loadtest.ErrInvalidConfig)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
