package main

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTracingFollowsTheOTELEnvironment(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		on   bool
		err  string
	}{
		{name: "nothing set", env: nil},
		{name: "endpoint", env: map[string]string{envEndpoint: "http://127.0.0.1:4318"}, on: true},
		{name: "traces endpoint", env: map[string]string{envTracesEndpoint: "http://127.0.0.1:4318/v1/traces"}, on: true},
		{name: "exporter otlp alone", env: map[string]string{envTracesExporter: "otlp"}, on: true},
		{name: "exporter none wins", env: map[string]string{envTracesExporter: "none", envEndpoint: "http://127.0.0.1:4318"}},
		{name: "sdk disabled wins", env: map[string]string{envSDKDisabled: "true", envTracesExporter: "otlp"}},
		{name: "http/protobuf", env: map[string]string{envEndpoint: "http://x:4318", envProtocol: "http/protobuf"}, on: true},
		{name: "grpc refused", env: map[string]string{envEndpoint: "http://x:4317", envTracesProtocol: "grpc"}, err: "http/protobuf only"},
		{name: "console refused", env: map[string]string{envTracesExporter: "console"}, err: "otlp only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			tr, err := newTracing(context.Background(), lookup, "test", slog.New(slog.DiscardHandler))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.on, tr.provider != nil)
			require.NoError(t, tr.shutdown(context.Background()))
			require.NoError(t, tr.shutdown(context.Background()), "shutdown is safe twice")
		})
	}
}
