package tenants_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/tenants"
	"github.com/custos-dev/custos/domain/text"
	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestParseID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"default", true},
		{"a", true},
		{"acme", true},
		{"acme2", true},
		{"bu-retail-01", true},
		{strings.Repeat("a", tenants.MaxIDLen), true},
		{strings.Repeat("a", tenants.MaxIDLen+1), false},
		{"", false},
		{"system", false},
		{"Acme", false},
		{"1acme", false},
		{"acme-", false},
		{"-acme", false},
		{"ac_me", false},
		{"acme.eu", false},
		{"acme\x00", false},
		{"acmé", false},
	} {
		t.Run(fmt.Sprintf("%q", tc.id), func(t *testing.T) {
			id, err := tenants.ParseID(tc.id)
			if !tc.ok {
				var ve *tenants.ValidationError
				require.ErrorAs(t, err, &ve)
				require.Equal(t, "tenant_id", ve.Field)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.id, id)
			// Every tenant id names a chain, and so do the namespaces of its
			// derived data.
			for _, name := range []string{id, "idx-" + id, "snap-" + id} {
				require.NoError(t, eventstore.ValidateChain(name))
			}
		})
	}
}

func TestDeciders(t *testing.T) {
	var s tenants.State
	c, err := tenants.Create(&s, tenants.CreateCommand{TenantID: "acme", Name: "  Acme Bank "}, t0)
	require.NoError(t, err)
	require.Equal(t, tenants.TenantCreated{TenantID: "acme", Name: "Acme Bank", CreatedAt: t0}, c)
	require.Zero(t, s.Len(), "a decider never mutates the state")
	require.NoError(t, s.Apply(c))

	_, err = tenants.Create(&s, tenants.CreateCommand{TenantID: "acme"}, t0)
	require.ErrorIs(t, err, tenants.ErrExists)
	require.ErrorIs(t, err, tenants.ErrConflict)

	c2, err := tenants.Create(&s, tenants.CreateCommand{TenantID: "acme2"}, t0)
	require.NoError(t, err)
	require.Equal(t, "acme2", c2.Name, "an empty name is the id")
	require.NoError(t, s.Apply(c2))

	for _, tc := range []struct {
		name string
		cmd  tenants.CreateCommand
		err  string
	}{
		{"bad id", tenants.CreateCommand{TenantID: "Acme"}, "tenant_id"},
		{"system", tenants.CreateCommand{TenantID: tenants.SystemChain}, "tenant_id"},
		{"long name", tenants.CreateCommand{TenantID: "x", Name: strings.Repeat("n", tenants.MaxNameLen+1)}, "name"},
		{"control", tenants.CreateCommand{TenantID: "x", Name: "a\nb"}, "name"},
		{"zero width", tenants.CreateCommand{TenantID: "x", Name: "a\u200bb"}, "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tenants.Create(&s, tc.cmd, t0)
			var ve *tenants.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, tc.err, ve.Field)
		})
	}

	_, err = tenants.Resume(&s, "acme", t0)
	require.ErrorIs(t, err, tenants.ErrActive)
	_, err = tenants.Suspend(&s, "nope", "", t0)
	require.ErrorIs(t, err, tenants.ErrNotFound)
	_, err = tenants.Resume(&s, "nope", t0)
	require.ErrorIs(t, err, tenants.ErrNotFound)
	_, err = tenants.Suspend(&s, "acme", "a\x01", t0)
	var ve *tenants.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "reason", ve.Field)
	require.ErrorIs(t, err, text.ErrRefused)

	sus, err := tenants.Suspend(&s, "acme", " unpaid invoice ", t0.Add(time.Hour))
	require.NoError(t, err)
	require.NoError(t, s.Apply(sus))
	got, ok := s.Get("acme")
	require.True(t, ok)
	require.Equal(t, tenants.Tenant{TenantID: "acme", Name: "Acme Bank", Status: tenants.StatusSuspended, CreatedAt: t0,
		SuspendedAt: t0.Add(time.Hour), SuspendReason: "unpaid invoice"}, got)
	_, err = tenants.Suspend(&s, "acme", "", t0)
	require.ErrorIs(t, err, tenants.ErrSuspended)
	other, _ := s.Get("acme2")
	require.Equal(t, tenants.StatusActive, other.Status, "suspending acme leaves acme2 alone")

	res, err := tenants.Resume(&s, "acme", t0.Add(2*time.Hour))
	require.NoError(t, err)
	require.NoError(t, s.Apply(res))
	got, _ = s.Get("acme")
	require.Equal(t, tenants.Tenant{TenantID: "acme", Name: "Acme Bank", Status: tenants.StatusActive, CreatedAt: t0}, got)
	require.Equal(t, []string{"acme", "acme2"}, ids(s.List()))
}

func TestApplyRefusesWhatDoesNotFit(t *testing.T) {
	var s tenants.State
	require.NoError(t, s.Apply(tenants.TenantCreated{TenantID: "acme", CreatedAt: t0}))
	for _, e := range []tenants.Event{
		tenants.TenantCreated{TenantID: "acme", CreatedAt: t0},
		tenants.TenantCreated{TenantID: "system", CreatedAt: t0},
		tenants.TenantCreated{TenantID: "b"},
		tenants.TenantSuspended{TenantID: "nope", SuspendedAt: t0},
		tenants.TenantSuspended{TenantID: "acme"},
		tenants.TenantResumed{TenantID: "nope", ResumedAt: t0},
	} {
		require.ErrorIs(t, s.Apply(e), tenants.ErrInconsistent, "%#v", e)
	}
	require.ErrorIs(t, s.Apply(nil), tenants.ErrUnknownEvent)
	require.Equal(t, []string{"acme"}, ids(s.List()), "a refused event changes nothing")

	_, err := tenants.Decode("tenant.deleted", []byte(`{}`))
	require.ErrorIs(t, err, tenants.ErrUnknownEvent)
	_, err = tenants.Decode(tenants.TypeTenantCreated, []byte(`{`))
	require.Error(t, err)
}

// TestReplayEqualsLive drives random commands and checks that the state
// rebuilt from the encoded events alone equals the live state, and that
// every refused command left it unchanged. Replay a failure with CUSTOS_SEED.
func TestReplayEqualsLive(t *testing.T) {
	rng := rand.New(rand.NewPCG(eventstoretest.Seed(t), 0))
	type record struct {
		typ     string
		payload []byte
	}
	var live tenants.State
	var log []record
	now := t0
	pool := []string{"a", "acme", "acme2", "b", "default", "system", "Bad"}
	for range 500 {
		now = now.Add(time.Duration(rng.IntN(1000)) * time.Second)
		id := pool[rng.IntN(len(pool))]
		before := live.List()
		var e tenants.Event
		var err error
		switch rng.IntN(3) {
		case 0:
			e, err = tenants.Create(&live, tenants.CreateCommand{TenantID: id}, now)
		case 1:
			e, err = tenants.Suspend(&live, id, "r", now)
		default:
			e, err = tenants.Resume(&live, id, now)
		}
		if err != nil {
			var ve *tenants.ValidationError
			require.True(t, errors.Is(err, tenants.ErrConflict) || errors.Is(err, tenants.ErrNotFound) || errors.As(err, &ve), "%v", err)
			require.Equal(t, before, live.List())
			continue
		}
		payload, err := json.Marshal(e)
		require.NoError(t, err)
		log = append(log, record{e.EventType(), payload})
		require.NoError(t, live.Apply(e))
	}
	var replayed tenants.State
	for _, r := range log {
		e, err := tenants.Decode(r.typ, r.payload)
		require.NoError(t, err)
		require.NoError(t, replayed.Apply(e))
	}
	require.Equal(t, live.List(), replayed.List())
	require.NotEmpty(t, log)

	snap, err := live.MarshalSnapshot()
	require.NoError(t, err)
	var restored tenants.State
	require.NoError(t, restored.UnmarshalSnapshot(snap))
	require.Equal(t, live.List(), restored.List())
	again, err := restored.MarshalSnapshot()
	require.NoError(t, err)
	require.Equal(t, snap, again, "equal states give equal bytes")
	clone := live.Clone()
	require.Equal(t, live.List(), clone.List())
	bad := append([]byte{tenants.SnapshotVersion + 1}, snap[1:]...)
	require.Error(t, restored.UnmarshalSnapshot(bad))
	require.Error(t, restored.UnmarshalSnapshot(snap[:len(snap)-1]))
	require.Equal(t, live.List(), restored.List(), "a refused snapshot changes nothing")
	require.Equal(t, []string{tenants.TypeTenantCreated, tenants.TypeTenantResumed, tenants.TypeTenantSuspended}, tenants.EventTypes())
}

func ids(ts []tenants.Tenant) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.TenantID
	}
	return out
}
