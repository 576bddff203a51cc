package policy_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/policy"
)

// evT0 is the fixed clock of the event, state, command and sync tests.
var evT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// mkPolicy returns a small valid policy.
func mkPolicy(name, role string) policy.Policy {
	return policy.Policy{Name: name, AgentRole: role, AllowedSources: []string{"src-" + role}}
}

// stamped returns p as a decider would record it.
func stamped(p policy.Policy, id string, version int) policy.Policy {
	p.PolicyID = id
	p.Version = version
	p.CreatedAt = evT0
	p.UpdatedAt = evT0.Add(time.Duration(version-1) * time.Minute)
	return p
}

// fill sets every field of v (recursively) to a non-zero value. A slice at
// slice depth emptyAt is set to a non-nil empty slice and one at nilAt stays
// nil; any other slice gets one filled element.
func fill(v reflect.Value, depth, emptyAt, nilAt int) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Int:
		v.SetInt(7)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), depth, emptyAt, nilAt)
	case reflect.Slice:
		switch depth {
		case nilAt:
		case emptyAt:
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		default:
			v.Set(reflect.MakeSlice(v.Type(), 1, 1))
			fill(v.Index(0), depth+1, emptyAt, nilAt)
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(evT0.Add(123456789)))
			return
		}
		for i := range v.NumField() {
			fill(v.Field(i), depth, emptyAt, nilAt)
		}
	default:
		panic("fill: unhandled kind " + v.Kind().String() + ": extend the test")
	}
}

func filled(emptyAt, nilAt int) policy.Policy {
	var p policy.Policy
	fill(reflect.ValueOf(&p).Elem(), 0, emptyAt, nilAt)
	return p
}

func TestEncodeDecodeKeepsPolicyExactly(t *testing.T) {
	t.Parallel()
	withEmpty := stamped(mkPolicy("a", "r"), "pol-a", 1)
	withEmpty.AllowedSources = []string{}
	withEmpty.DeniedSources = []string{}
	withEmpty.PermittedAgentIDs = []string{}
	withEmpty.Regulations = []policy.Regulation{{ID: "r", ApplicableRules: []policy.RegulationRule{}}}
	withEmpty.RequirePrincipalEntitlements = []policy.EntitlementRule{
		{Sources: []string{"s"}, RequireAny: []string{"g:x"}, RequireAll: []string{}},
	}
	policies := map[string]policy.Policy{
		"zero":                     {},
		"full":                     fullPolicy(),
		"empty lists":              withEmpty,
		"every field, one element": filled(-1, -1),
		"top-level lists empty":    filled(0, -1),
		"nested lists empty":       filled(1, -1),
		"deepest lists empty":      filled(2, -1),
		"top-level lists nil":      filled(-1, 0),
		"nested lists nil":         filled(-1, 1),
		"deepest lists nil":        filled(-1, 2),
	}
	for name, p := range policies {
		for _, ev := range []policy.Event{policy.PolicyCreated{Policy: p}, policy.PolicyUpdated{Policy: p}} {
			t.Run(name+"/"+ev.EventType(), func(t *testing.T) {
				t.Parallel()
				typ, payload, err := encode(ev)
				require.NoError(t, err)
				require.Equal(t, ev.EventType(), typ)

				viaJSON, err := json.Marshal(ev)
				require.NoError(t, err)
				require.Equal(t, string(payload), string(viaJSON), "json.Marshal (domain.Encode) must equal Encode")

				got, err := policy.Decode(typ, payload)
				require.NoError(t, err)
				require.Equal(t, ev, got)
				require.True(t, reflect.DeepEqual(ev, got), "nil and empty must survive")

				// A Policy decoded with its own tags reads the payload too.
				var plain struct{ Policy policy.Policy }
				require.NoError(t, json.Unmarshal(payload, &plain))
				require.Equal(t, p.Name, plain.Policy.Name)
			})
		}
	}
}

func TestEncodeGolden(t *testing.T) {
	t.Parallel()
	p := stamped(mkPolicy("a", "r"), "pol-a", 1)
	p.PermittedAgentIDs = []string{}
	p.DeniedSources = []string{}
	for _, tc := range []struct {
		name, wantType, wantJSON string
		ev                       policy.Event
	}{
		{
			name:     "created",
			ev:       policy.PolicyCreated{Policy: p},
			wantType: "policy.created",
			wantJSON: `{"policy":{"name":"a","policy_id":"pol-a","agent_role":"r","permitted_agent_ids":[],"allowed_sources":["src-r"],"denied_sources":[],"version":1,"created_at":"2026-03-01T12:00:00Z","updated_at":"2026-03-01T12:00:00Z"}}`,
		},
		{
			name:     "updated pointer",
			ev:       &policy.PolicyUpdated{Policy: policy.Policy{Name: "a", AgentRole: "r"}},
			wantType: "policy.updated",
			wantJSON: `{"policy":{"name":"a","agent_role":"r"}}`,
		},
		{
			name:     "deleted",
			ev:       policy.PolicyDeleted{PolicyID: "pol-a", Name: "a", AgentRole: "r", Version: 3, DeletedAt: evT0},
			wantType: "policy.deleted",
			wantJSON: `{"policy_id":"pol-a","name":"a","agent_role":"r","version":3,"deleted_at":"2026-03-01T12:00:00Z"}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			typ, payload, err := encode(tc.ev)
			require.NoError(t, err)
			assert.Equal(t, tc.wantType, typ)
			assert.Equal(t, tc.wantJSON, string(payload))
		})
	}
}

type otherEvent struct{}

func (otherEvent) EventType() string { return "policy.renamed" }

func TestUnknownEvents(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		run  func() error
	}{
		{name: "decode unknown type", run: func() error { _, err := policy.Decode("policy.renamed", []byte(`{}`)); return err }},
		{name: "decode key event", run: func() error { _, err := policy.Decode("key.created", []byte(`{}`)); return err }},
		{name: "apply nil pointer", run: func() error { var s policy.State; return s.Apply((*policy.PolicyCreated)(nil)) }},
		{name: "apply foreign type", run: func() error { var s policy.State; return s.Apply(otherEvent{}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.ErrorIs(t, tc.run(), policy.ErrUnknownEvent)
		})
	}
	_, err := policy.Decode(policy.TypePolicyCreated, []byte(`{"policy":`))
	require.Error(t, err)
	require.NotErrorIs(t, err, policy.ErrUnknownEvent)
}
