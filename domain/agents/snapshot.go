package agents

import (
	"fmt"
	"slices"

	"github.com/custos-dev/custos/domain/internal/wire"
)

// SnapshotVersion is the format version MarshalSnapshot writes and the only
// one UnmarshalSnapshot reads. Bump it when the encoding changes.
const SnapshotVersion = 2 // 2: policy_id

// MarshalSnapshot encodes every agent of s, sorted by agent_id, so that
// equal states give equal bytes. It only reads s.
func (s *State) MarshalSnapshot() ([]byte, error) {
	ids := make([]string, 0, s.byID.Len())
	for id := range s.byID.All() {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	w := wire.NewWriter(16 + 256*len(ids))
	w.Uvarint(SnapshotVersion)
	w.Uvarint(uint64(len(ids)))
	for _, id := range ids {
		a, _ := s.byID.Get(id)
		w.String(a.AgentID)
		w.String(a.AgentRole)
		w.String(a.DisplayName)
		w.String(a.Description)
		w.String(a.Owner)
		w.String(a.OwnerTeam)
		w.String(a.Framework)
		w.String(a.PolicyName)
		w.String(a.PolicyID)
		wire.PutStrings(w, a.PermittedRoles)
		w.String(string(a.Status))
		w.Time(a.CreatedAt)
		w.Time(a.UpdatedAt)
		w.Time(a.StatusChangedAt)
	}
	return w.Bytes(), nil
}

// UnmarshalSnapshot replaces the contents of s with the state encoded in b
// by MarshalSnapshot. It fails, leaving s unchanged, on a version other than
// SnapshotVersion or on bytes that do not decode (including a duplicate
// agent_id or an unknown status).
func (s *State) UnmarshalSnapshot(b []byte) error {
	r := wire.NewReader(b)
	r.Version("agents", SnapshotVersion)
	n := r.Len(r.Uvarint(), 16)
	var c State
	for range n {
		a := &Agent{
			AgentID:        r.String(),
			AgentRole:      r.String(),
			DisplayName:    r.String(),
			Description:    r.String(),
			Owner:          r.String(),
			OwnerTeam:      r.String(),
			Framework:      r.String(),
			PolicyName:     r.String(),
			PolicyID:       r.String(),
			PermittedRoles: wire.GetStrings[string](r),
			Status:         Status(r.String()),
		}
		a.CreatedAt = r.Time()
		a.UpdatedAt = r.Time()
		a.StatusChangedAt = r.Time()
		if r.Err() != nil {
			break
		}
		if !a.Status.Valid() {
			r.Fail("agent %q: unknown status %q", a.AgentID, a.Status)
			break
		}
		if _, dup := c.byID.Get(a.AgentID); dup {
			r.Fail("agent %q twice", a.AgentID)
			break
		}
		c.byID.Set(a.AgentID, a)
	}
	if err := r.Done(); err != nil {
		return fmt.Errorf("agents: restore snapshot: %w", err)
	}
	s.byID = c.byID
	return nil
}
