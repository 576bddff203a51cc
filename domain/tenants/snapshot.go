package tenants

import (
	"maps"

	"github.com/custos-dev/custos/domain/internal/wire"
)

// SnapshotVersion is the format version of State.MarshalSnapshot.
const SnapshotVersion = 1

// Clone returns a copy of s that shares nothing mutable with it.
func (s *State) Clone() *State { return &State{tenants: maps.Clone(s.tenants)} }

// MarshalSnapshot encodes s exactly, tenants sorted by id, so equal states
// give equal bytes.
func (s *State) MarshalSnapshot() ([]byte, error) {
	list := s.List()
	w := wire.NewWriter(8 + 96*len(list))
	w.Uvarint(SnapshotVersion)
	w.Uvarint(uint64(len(list)))
	for _, t := range list {
		w.String(t.TenantID)
		w.String(t.Name)
		w.String(string(t.Status))
		w.Time(t.CreatedAt)
		w.Time(t.SuspendedAt)
		w.String(t.SuspendReason)
	}
	return w.Bytes(), nil
}

// UnmarshalSnapshot replaces the contents of s with the state encoded in b
// by MarshalSnapshot. On error (wrapping wire.ErrVersion or
// wire.ErrCorrupt) s is unchanged.
func (s *State) UnmarshalSnapshot(b []byte) error {
	r := wire.NewReader(b)
	r.Version("tenants", SnapshotVersion)
	n := State{}
	for range r.Len(r.Uvarint(), 4) {
		t := Tenant{TenantID: r.String(), Name: r.String(), Status: Status(r.String()), CreatedAt: r.Time(), SuspendedAt: r.Time(), SuspendReason: r.String()}
		if r.Err() != nil {
			break
		}
		if _, err := ParseID(t.TenantID); err != nil || (t.Status != StatusActive && t.Status != StatusSuspended) || n.tenants[t.TenantID].TenantID != "" {
			r.Fail("tenants: snapshot tenant %q does not fit", t.TenantID)
			break
		}
		if n.tenants == nil {
			n.tenants = make(map[string]Tenant)
		}
		n.tenants[t.TenantID] = t
	}
	if err := r.Done(); err != nil {
		return err
	}
	*s = n
	return nil
}
