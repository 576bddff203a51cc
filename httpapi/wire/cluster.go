package wire

import "time"

// Roles of a node of a cluster, in Status.Role and Cluster.Role.
const (
	RoleSequencer = "sequencer"
	RoleFollower  = "follower"
)

// Cluster answers GET /v1/cluster: where each chain is ordered and how far
// each node has applied it, as seen by the node that answered.
type Cluster struct {
	// Node is the node that answered, Role its role.
	Node string `json:"node"`
	Role string `json:"role"`
	// Chains lists the chains this node follows, by name.
	Chains []ClusterChain `json:"chains"`
	// Nodes lists the nodes that reported their progress within the last
	// few seconds, by name; a node that stopped drops out.
	Nodes []ClusterNode `json:"nodes"`
}

// ClusterChain is one chain of a cluster.
type ClusterChain struct {
	Chain string `json:"chain"`
	// Sequencer names the node that holds the chain's lease, and
	// SequencerURL where it is reached; both null while the lease is
	// vacant (a failover is under way).
	Sequencer    *string `json:"sequencer"`
	SequencerURL *string `json:"sequencer_url"`
	// StreamSeq is the seq of the chain's last record in the stream.
	StreamSeq uint64 `json:"stream_seq"`
}

// ClusterNode is one node's progress.
type ClusterNode struct {
	Node string `json:"node"`
	URL  string `json:"url"`
	// ReportedAt is when the node last reported.
	ReportedAt time.Time `json:"reported_at"`
	// Chains holds, per chain, the seq the node has applied and its lag
	// behind the stream (StreamSeq less AppliedSeq, 0 when caught up).
	Chains []NodeChain `json:"chains"`
}

// NodeChain is how far a node has applied a chain.
type NodeChain struct {
	Chain      string `json:"chain"`
	AppliedSeq uint64 `json:"applied_seq"`
	Lag        uint64 `json:"lag"`
}
