package agents_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/agents"
)

// t0 is the fixed clock every test starts from.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// agentID returns a valid agent_<ULID>-shaped id that sorts by n.
func agentID(n int) string { return fmt.Sprintf("agent_%026d", n) }

// record is one log entry as the sequencer would store it.
type record struct {
	typ     string
	payload []byte
}

// harness plays the sequencer: decide, encode (log), apply.
type harness struct {
	t     testing.TB
	state *agents.State
	log   []record
	next  int
}

func newHarness(t testing.TB) *harness {
	return &harness{t: t, state: &agents.State{}, next: 1}
}

func (h *harness) newID() string {
	id := agentID(h.next)
	h.next++
	return id
}

// commit appends ev to the log and applies it, like the sequencer.
func (h *harness) commit(ev agents.Event) {
	h.t.Helper()
	typ, payload, err := encode(ev)
	require.NoError(h.t, err)
	h.log = append(h.log, record{typ, payload})
	require.NoError(h.t, h.state.Apply(ev))
}

func (h *harness) register(cmd agents.RegisterCommand, now time.Time) agents.Agent {
	h.t.Helper()
	ev, err := agents.Register(h.state, cmd, now, h.newID())
	require.NoError(h.t, err)
	h.commit(ev)
	return ev.Agent
}

func (h *harness) update(id string, cmd agents.UpdateCommand, now time.Time) agents.Agent {
	h.t.Helper()
	ev, err := agents.Update(h.state, id, cmd, now)
	require.NoError(h.t, err)
	h.commit(ev)
	return ev.Agent
}

func (h *harness) changeStatus(id string, to agents.Status, now time.Time) {
	h.t.Helper()
	ev, err := agents.ChangeStatus(h.state, id, string(to), now)
	require.NoError(h.t, err)
	h.commit(ev)
}

// replay rebuilds a State from the log alone.
func (h *harness) replay() *agents.State {
	h.t.Helper()
	s := &agents.State{}
	for _, r := range h.log {
		ev, err := agents.Decode(r.typ, r.payload)
		require.NoError(h.t, err)
		require.NoError(h.t, s.Apply(ev))
	}
	return s
}

func mustAgent(t testing.TB, s *agents.State, id string) agents.Agent {
	t.Helper()
	a, ok := s.ByID(id)
	require.True(t, ok, "agent %s", id)
	return a
}

// validationFields returns the Field of every *ValidationError in err, in
// order; err must consist of nothing else.
func validationFields(t *testing.T, err error) []string {
	t.Helper()
	require.Error(t, err)
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var fields []string
	for _, e := range errs {
		ve, ok := e.(*agents.ValidationError)
		require.True(t, ok, "want *ValidationError, got %T: %v", e, e)
		require.NotEmpty(t, ve.Problem)
		fields = append(fields, ve.Field)
	}
	return fields
}

// encode stores ev as the domain does: its wire type and its json.Marshal
// encoding (see domain.Encode).
func encode(ev agents.Event) (string, []byte, error) {
	payload, err := json.Marshal(ev)
	return ev.EventType(), payload, err
}
