package jetstream

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedOptions configure an in-process nats-server with JetStream, for
// trials and tests: a single server, or one of a cluster on one machine.
type EmbeddedOptions struct {
	// Name is the server's name, unique in its cluster. Required.
	Name string
	// Dir is the JetStream store folder. Required.
	Dir string
	// Host to listen on. Default 127.0.0.1.
	Host string
	// Port for clients; -1 picks a free one. Default -1.
	Port int
	// Cluster, if set, names the cluster this server joins.
	Cluster string
	// ClusterPort for routes; -1 picks a free one. Used with Cluster.
	ClusterPort int
	// Routes are the other servers' route URLs (nats://host:port).
	Routes []string
	// MonitorPort, if not 0, serves the monitoring endpoints (/varz) on
	// Host; -1 picks a free one.
	MonitorPort int
}

// StartEmbedded starts an in-process nats-server with JetStream in Dir and
// sync_interval: always (every write fsynced before it is acknowledged),
// and waits until it accepts connections. The caller shuts it down
// (Shutdown, then WaitForShutdown).
func StartEmbedded(o EmbeddedOptions) (*server.Server, error) {
	if o.Name == "" || o.Dir == "" {
		return nil, fmt.Errorf("jetstream: embedded server needs a name and a folder")
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Port == 0 {
		o.Port = -1
	}
	opts := &server.Options{
		ServerName: o.Name,
		Host:       o.Host,
		Port:       o.Port,
		JetStream:  true,
		StoreDir:   o.Dir,
		SyncAlways: true,
		NoSigs:     true,
		NoLog:      true,
		HTTPHost:   o.Host,
		HTTPPort:   o.MonitorPort,
	}
	if o.Cluster != "" {
		opts.Cluster = server.ClusterOpts{Name: o.Cluster, Host: o.Host, Port: o.ClusterPort}
		if opts.Cluster.Port == 0 {
			opts.Cluster.Port = -1
		}
		for _, r := range o.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("jetstream: route %q: %w", r, err)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("jetstream: embedded server %s: %w", o.Name, err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("jetstream: embedded server %s did not start", o.Name)
	}
	return s, nil
}

// EmbeddedSyncCheck returns a SyncChecked that requires every one of
// servers (in-process) to run JetStream with sync always.
func EmbeddedSyncCheck(servers ...*server.Server) func(context.Context) error {
	return func(context.Context) error {
		for _, s := range servers {
			cfg := s.JetStreamConfig()
			if cfg == nil || !cfg.SyncAlways {
				return fmt.Errorf("%w: embedded server %s", ErrNotSyncAlways, s.Name())
			}
		}
		return nil
	}
}
