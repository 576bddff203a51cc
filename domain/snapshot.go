package domain

import (
	"encoding/binary"
	"fmt"

	"github.com/custos-dev/custos/domain/internal/wire"
)

// SnapshotVersion is the format version of State.MarshalSnapshot. It covers
// the framing only; each part carries its subdomain's own version
// (keys.SnapshotVersion, ...), and a change to any of them makes older
// snapshots unreadable (they are derived data: the log rebuilds them).
const SnapshotVersion = 3

// Snapshot errors, matched with errors.Is on the error of
// State.UnmarshalSnapshot (and of the subdomains' UnmarshalSnapshot).
var (
	// ErrSnapshotVersion means the snapshot, or a part of it, was written
	// in a format version this build does not read.
	ErrSnapshotVersion = wire.ErrVersion
	// ErrSnapshotCorrupt means the snapshot does not decode to a consistent
	// state.
	ErrSnapshotCorrupt = wire.ErrCorrupt
)

// MarshalSnapshot encodes s exactly: UnmarshalSnapshot of the result gives a
// state whose every read (keys by id, hash and list; policies and their
// compiled set; agents; sessions; alert rules; tenants) equals s's, and on which later events
// apply the same way. Maps are written sorted, so equal states give equal
// bytes. It only reads s; to encode without holding up writers, encode a
// FrozenCopy. It is the concatenation of MarshalSnapshotParts.
func (s *State) MarshalSnapshot() ([]byte, error) {
	parts, err := s.MarshalSnapshotParts()
	if err != nil {
		return nil, err
	}
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	b := make([]byte, 0, size)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b, nil
}

// MarshalSnapshotParts encodes s as MarshalSnapshot does, but returns the
// encoding as pieces whose concatenation, in order, is MarshalSnapshot's
// result: each subdomain's encoding as it made it and the small framing
// between them. A caller that writes the pieces out one after the other
// (projections/replay stores them in chunks) saves the copy into one
// buffer. The pieces are new and the caller's to keep.
func (s *State) MarshalSnapshotParts() ([][]byte, error) {
	parts := []struct {
		name    string
		marshal func() ([]byte, error)
	}{
		{"keys", s.Keys.MarshalSnapshot},
		{"policies", s.Policies.MarshalSnapshot},
		{"agents", s.Agents.MarshalSnapshot},
		{"sessions", s.Sessions.MarshalSnapshot},
		{"alerts", s.Alerts.MarshalSnapshot},
		{"tenants", s.Tenants.MarshalSnapshot},
	}
	// The framing is wire's: the version, then each part as Raw (its
	// length as a uvarint, then its bytes).
	out := make([][]byte, 0, 2*len(parts))
	head := binary.AppendUvarint(nil, SnapshotVersion)
	for _, p := range parts {
		b, err := p.marshal()
		if err != nil {
			return nil, fmt.Errorf("domain: snapshot %s: %w", p.name, err)
		}
		out = append(out, binary.AppendUvarint(head, uint64(len(b))), b)
		head = nil
	}
	return out, nil
}

// UnmarshalSnapshot replaces the contents of s with the state encoded in b
// by MarshalSnapshot. On error (wrapping ErrSnapshotVersion or
// ErrSnapshotCorrupt) s is unchanged.
func (s *State) UnmarshalSnapshot(b []byte) error {
	r := wire.NewReader(b)
	r.Version("state", SnapshotVersion)
	raw := [6][]byte{r.Raw(), r.Raw(), r.Raw(), r.Raw(), r.Raw(), r.Raw()}
	if err := r.Done(); err != nil {
		return fmt.Errorf("domain: restore snapshot: %w", err)
	}
	n := NewState()
	parts := []struct {
		name      string
		unmarshal func([]byte) error
	}{
		{"keys", n.Keys.UnmarshalSnapshot},
		{"policies", n.Policies.UnmarshalSnapshot},
		{"agents", n.Agents.UnmarshalSnapshot},
		{"sessions", n.Sessions.UnmarshalSnapshot},
		{"alerts", n.Alerts.UnmarshalSnapshot},
		{"tenants", n.Tenants.UnmarshalSnapshot},
	}
	for i, p := range parts {
		if err := p.unmarshal(raw[i]); err != nil {
			return fmt.Errorf("domain: restore snapshot %s: %w", p.name, err)
		}
	}
	*s = *n
	return nil
}

// Entries returns how many entries a snapshot of s encodes: keys, policies,
// agents and sessions (alert rules and tenants are few). A snapshot's cost
// grows with it.
func (s *State) Entries() int {
	return s.Keys.Len() + s.Policies.Len() + s.Agents.Len() + s.Sessions.Len()
}

// FrozenCopy returns a copy of s that may be encoded (MarshalSnapshot) on
// another goroutine while s keeps applying events. It costs O(shards), not
// O(state): keys, agents and sessions are copy-on-write maps
// (domain/internal/cow) that the copy shares with s, and s copies a shard
// on its first write after the freeze and a key entry or session record
// before its first change (agents are never changed in place); a
// session's SourcesAccessed is shared, since Apply only appends to it;
// policies are immutable and shared; alert rules, the memory of raised
// alerts and the tenants are small and cloned. The copy must only be read.
// Call it where no Apply and no read of s can run (it changes s's
// copy-on-write bookkeeping).
func (s *State) FrozenCopy() *State {
	return &State{Keys: s.Keys.FrozenCopy(), Policies: s.Policies.Clone(), Agents: s.Agents.FrozenCopy(), Sessions: s.Sessions.FrozenCopy(), Alerts: s.Alerts.Clone(), Tenants: s.Tenants.Clone()}
}
