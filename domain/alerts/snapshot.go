package alerts

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/custos-dev/custos/domain/internal/wire"
)

// SnapshotVersion is the format version MarshalSnapshot writes and the only
// one UnmarshalSnapshot reads. Bump it when the encoding changes.
const SnapshotVersion = 1

// MarshalSnapshot encodes s: the rules (sorted by rule_id, each as its
// JSON form, the same as in alert.rule_set), the dedupe keys (sorted) with
// their seqs, and the count. Equal states give equal bytes. It only reads
// s.
func (s *State) MarshalSnapshot() ([]byte, error) {
	rules := s.Rules()
	w := wire.NewWriter(32 + 128*len(rules) + 64*len(s.raised))
	w.Uvarint(SnapshotVersion)
	w.Uvarint(uint64(len(rules)))
	for _, r := range rules {
		b, err := json.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("alerts: snapshot rule %s: %w", r.RuleID, err)
		}
		w.Raw(b)
	}
	keys := slices.Sorted(maps.Keys(s.raised))
	w.Uvarint(uint64(len(keys)))
	for _, k := range keys {
		w.String(k)
		w.Uvarint(s.raised[k])
	}
	w.Uvarint(s.count)
	return w.Bytes(), nil
}

// UnmarshalSnapshot replaces the contents of s with the state encoded in b
// by MarshalSnapshot. On error s is unchanged.
func (s *State) UnmarshalSnapshot(b []byte) error {
	r := wire.NewReader(b)
	r.Version("alerts", SnapshotVersion)
	n := State{}
	for range r.Len(r.Uvarint(), 2) {
		raw := r.Raw()
		if r.Err() != nil {
			break
		}
		var rule Rule
		if err := json.Unmarshal(raw, &rule); err != nil || rule.RuleID == "" {
			r.Fail("alerts: snapshot rule does not decode")
			break
		}
		if len(rule.Days) == 0 {
			rule.Days = nil
		}
		if n.rules == nil {
			n.rules = map[string]Rule{}
		}
		n.rules[rule.RuleID] = rule
	}
	for range r.Len(r.Uvarint(), 2) {
		k, seq := r.String(), r.Uvarint()
		if r.Err() != nil {
			break
		}
		if n.raised == nil {
			n.raised = map[string]uint64{}
		}
		n.raised[k] = seq
	}
	n.count = r.Uvarint()
	if err := r.Done(); err != nil {
		return err
	}
	*s = n
	return nil
}
