package keys_test

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/domain/text"
)

const day = 24 * time.Hour

func TestCreateValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cmd   keys.CreateCommand
		field string // "" means valid
	}{
		{"minimal", keys.CreateCommand{Name: "ci", Scope: "read"}, ""},
		{"name empty", keys.CreateCommand{Name: "", Scope: "read"}, "name"},
		{"name blank", keys.CreateCommand{Name: " \t ", Scope: "read"}, "name"},
		{"name 128 chars", keys.CreateCommand{Name: strings.Repeat("é", 128), Scope: "read"}, ""},
		{"name 129 chars", keys.CreateCommand{Name: strings.Repeat("a", 129), Scope: "read"}, "name"},
		{"name 128 after trim", keys.CreateCommand{Name: "  " + strings.Repeat("a", 128) + "  ", Scope: "read"}, ""},
		{"name invalid utf8", keys.CreateCommand{Name: "a\xffb", Scope: "read"}, "name"},
		{"name control char", keys.CreateCommand{Name: "a\nb", Scope: "read"}, "name"},
		{"scope empty", keys.CreateCommand{Name: "x"}, "scope"},
		{"scope unknown", keys.CreateCommand{Name: "x", Scope: "root"}, "scope"},
		{"scope wrong case", keys.CreateCommand{Name: "x", Scope: "ADMIN"}, "scope"},
		{"expires_days 0", keys.CreateCommand{Name: "x", Scope: "read", ExpiresDays: ptr(0)}, "expires_days"},
		{"expires_days negative", keys.CreateCommand{Name: "x", Scope: "read", ExpiresDays: ptr(-1)}, "expires_days"},
		{"expires_days 1", keys.CreateCommand{Name: "x", Scope: "read", ExpiresDays: ptr(1)}, ""},
		{"expires_days 3650", keys.CreateCommand{Name: "x", Scope: "read", ExpiresDays: ptr(3650)}, ""},
		{"expires_days 3651", keys.CreateCommand{Name: "x", Scope: "read", ExpiresDays: ptr(3651)}, "expires_days"},
		{"expires_at now", keys.CreateCommand{Name: "x", Scope: "read", ExpiresAt: ptr(t0)}, "expires_at"},
		{"expires_at past", keys.CreateCommand{Name: "x", Scope: "read", ExpiresAt: ptr(t0.Add(-time.Second))}, "expires_at"},
		{"expires_at just ahead", keys.CreateCommand{Name: "x", Scope: "read", ExpiresAt: ptr(t0.Add(time.Nanosecond))}, ""},
		{"expires_at 3650 days", keys.CreateCommand{Name: "x", Scope: "read", ExpiresAt: ptr(t0.Add(3650 * day))}, ""},
		{"expires_at beyond 3650 days", keys.CreateCommand{Name: "x", Scope: "read", ExpiresAt: ptr(t0.Add(3650*day + time.Second))}, "expires_at"},
		{"both expiries", keys.CreateCommand{Name: "x", Scope: "read", ExpiresDays: ptr(1), ExpiresAt: ptr(t0.Add(day))}, "expires_at"},
		{"agent with evaluate", keys.CreateCommand{Name: "x", Scope: "evaluate", AgentID: "agent-1"}, ""},
		{"agent with read", keys.CreateCommand{Name: "x", Scope: "read", AgentID: "agent-1"}, "agent_id"},
		{"agent with admin", keys.CreateCommand{Name: "x", Scope: "admin", AgentID: "agent-1"}, "agent_id"},
		{"agent too long", keys.CreateCommand{Name: "x", Scope: "evaluate", AgentID: strings.Repeat("a", 129)}, "agent_id"},
		{"agent control char", keys.CreateCommand{Name: "x", Scope: "evaluate", AgentID: "a\x00"}, "agent_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, plain, err := keys.Create(&keys.State{}, tt.cmd, t0, keyID(1), entropy(1))
			if tt.field == "" {
				require.NoError(t, err)
				require.NoError(t, keys.CheckFormat(plain))
				assert.Equal(t, keyID(1), ev.KeyID)
				return
			}
			var ve *keys.ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, tt.field, ve.Field)
			assert.NotEmpty(t, ve.Problem)
			assert.Contains(t, err.Error(), tt.field)
			assert.Empty(t, plain)
			assert.Zero(t, ev)
		})
	}
}

// TestCreateRefusesCharacters checks that name and agent_id follow
// text.Identifier and that the cause is kept for the HTTP layer.
func TestCreateRefusesCharacters(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"a\x1b[31m", "a\x7f", "a\u0085b", "a\u202Eb", "a\u2066b", "a\u200Fb", "a\u200Bb", "\uFEFFa", "a\u2060", "a\xc3"} {
		for _, cmd := range []keys.CreateCommand{
			{Name: bad, Scope: "read"},
			{Name: "x", Scope: "evaluate", AgentID: bad},
		} {
			field := "name"
			if cmd.AgentID != "" {
				field = "agent_id"
			}
			_, _, err := keys.Create(&keys.State{}, cmd, t0, keyID(1), entropy(1))
			var ve *keys.ValidationError
			require.ErrorAs(t, err, &ve, "%s %q", field, bad)
			assert.Equal(t, field, ve.Field)
			assert.ErrorIs(t, err, text.ErrRefused, "%s %q", field, bad)
		}
	}
	_, _, err := keys.Create(&keys.State{}, keys.CreateCommand{Name: "", Scope: "read"}, t0, keyID(1), entropy(1))
	assert.NotErrorIs(t, err, text.ErrRefused, "other problems are not refused characters")
}

func TestCreateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, _, err := keys.Create(&keys.State{}, keys.CreateCommand{Scope: "nope", ExpiresDays: ptr(0)}, t0, keyID(1), entropy(1))
	require.Error(t, err)
	var fields []string
	var joined interface{ Unwrap() []error }
	require.ErrorAs(t, err, &joined)
	for _, e := range joined.Unwrap() {
		var ve *keys.ValidationError
		require.ErrorAs(t, e, &ve)
		fields = append(fields, ve.Field)
	}
	assert.Equal(t, []string{"name", "scope", "expires_days"}, fields)
}

func TestCreateEvent(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 13, 0, 0, 5, time.FixedZone("CET", 3600))
	tests := []struct {
		name    string
		cmd     keys.CreateCommand
		expires time.Time
	}{
		{"default 90 days", keys.CreateCommand{Name: " ci ", Scope: "evaluate", AgentID: "agent-7"}, now.UTC().Add(90 * day)},
		{"expires_days", keys.CreateCommand{Name: "ci", Scope: "evaluate", ExpiresDays: ptr(7)}, now.UTC().Add(7 * day)},
		{"expires_at", keys.CreateCommand{Name: "ci", Scope: "evaluate", ExpiresAt: ptr(now.Add(time.Hour))}, now.UTC().Add(time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, plain, err := keys.Create(&keys.State{}, tt.cmd, now, keyID(1), entropy(1))
			require.NoError(t, err)
			h := keys.Hash(plain)
			assert.Equal(t, keys.KeyCreated{
				KeyID:     keyID(1),
				Name:      "ci",
				Scope:     keys.ScopeEvaluate,
				Prefix:    keys.DisplayPrefix(plain),
				KeyHash:   hex.EncodeToString(h[:]),
				CreatedAt: now.UTC(),
				ExpiresAt: tt.expires,
				AgentID:   tt.cmd.AgentID,
			}, ev)
			assert.Equal(t, time.UTC, ev.CreatedAt.Location())
			assert.Equal(t, time.UTC, ev.ExpiresAt.Location())
		})
	}
}

func TestCreateDoesNotMutateState(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.create(keys.CreateCommand{Name: "a", Scope: "admin"}, t0)
	before := h.state.Clone()
	_, _, err := keys.Create(h.state, keys.CreateCommand{Name: "b", Scope: "read"}, t0, keyID(99), entropy(5))
	require.NoError(t, err)
	require.Equal(t, before, h.state)
}

func TestCreateBadIDsAndEntropy(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	first, _ := h.create(keys.CreateCommand{Name: "a", Scope: "admin"}, t0)
	cmd := keys.CreateCommand{Name: "b", Scope: "read"}
	tests := []struct {
		name string
		id   string
		want error
	}{
		{"empty id", "", keys.ErrMalformedID},
		{"no prefix", "01ARZ3NDEKTSV4RRFFQ69G5FAV", keys.ErrMalformedID},
		{"lower-case ulid", "key_01arz3ndektsv4rrffq69g5fav", keys.ErrMalformedID},
		{"ulid overflow", "key_81ARZ3NDEKTSV4RRFFQ69G5FAV", keys.ErrMalformedID},
		{"ulid with I", "key_01ARZ3NDEKTSV4RRFFQ69G5FAI", keys.ErrMalformedID},
		{"duplicate id", first.KeyID, keys.ErrMalformedID},
		{"canonical ulid", "key_01ARZ3NDEKTSV4RRFFQ69G5FAV", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := keys.Create(h.state, cmd, t0, tt.id, entropy(2))
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
		})
	}

	t.Run("entropy fails", func(t *testing.T) {
		t.Parallel()
		_, _, err := keys.Create(h.state, cmd, t0, keyID(50), &errReader{})
		require.ErrorIs(t, err, errEntropy)
	})
	t.Run("entropy repeats", func(t *testing.T) {
		t.Parallel()
		// Harness keys come from entropy(1); replaying that stream collides.
		_, _, err := keys.Create(h.state, cmd, t0, keyID(51), entropy(1))
		require.Error(t, err)
		require.Contains(t, err.Error(), "collides")
	})
}

var errEntropy = errors.New("entropy exhausted")

type errReader struct{}

func (*errReader) Read([]byte) (int, error) { return 0, errEntropy }

func TestExpiryWithInjectedClock(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ev, plain := h.create(keys.CreateCommand{Name: "short", Scope: "read", ExpiresDays: ptr(1)}, t0)
	require.Equal(t, t0.Add(day), ev.ExpiresAt)
	k := mustKey(t, h.state, ev.KeyID)

	tests := []struct {
		name   string
		now    time.Time
		active bool
	}{
		{"at creation", t0, true},
		{"just before expires_at", ev.ExpiresAt.Add(-time.Nanosecond), true},
		{"at expires_at", ev.ExpiresAt, false},
		{"after expires_at", ev.ExpiresAt.Add(time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.active, k.IsActive(tt.now))
			_, err := authenticate(h.state, plain, tt.now)
			if tt.active {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, keys.ErrInvalidKey)
			}
		})
	}
}

func TestRotateKeepsDurationAndBinding(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	old, _ := h.create(keys.CreateCommand{Name: "agent key", Scope: "evaluate", ExpiresDays: ptr(30), AgentID: "agent-9"}, t0)
	at := t0.Add(10 * day)
	ev, plain := h.rotate(keys.RotateCommand{KeyID: old.KeyID}, at)

	assert.Equal(t, old.KeyID, ev.OldKeyID)
	assert.Equal(t, at, ev.OldRevokedAt, "no grace: old key stops at once")
	n := ev.NewKey
	assert.Equal(t, old.KeyID, n.RotatedFrom)
	assert.Equal(t, at, n.CreatedAt)
	assert.Equal(t, 30*day, n.ExpiresAt.Sub(n.CreatedAt), "same duration, counted from now")
	assert.Equal(t, old.Name, n.Name)
	assert.Equal(t, old.Scope, n.Scope)
	assert.Equal(t, old.AgentID, n.AgentID)
	assert.NotEqual(t, old.KeyHash, n.KeyHash)

	got, err := authenticate(h.state, plain, at)
	require.NoError(t, err)
	assert.Equal(t, n.KeyID, got.KeyID)
	assert.Equal(t, old.KeyID, got.RotatedFrom)
	oldKey := mustKey(t, h.state, old.KeyID)
	assert.Equal(t, n.KeyID, oldKey.RotatedTo)
	require.NotNil(t, oldKey.RevokedAt)
	assert.Equal(t, at, *oldKey.RevokedAt)
	assert.False(t, oldKey.IsActive(at))
}

func TestRotateGrace(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		expiresDays int
		rotateAt    time.Time
		grace       *int
		wantRevoked time.Time
	}{
		{"nil grace", 30, t0.Add(day), nil, t0.Add(day)},
		{"zero grace", 30, t0.Add(day), ptr(0), t0.Add(day)},
		{"one hour", 30, t0.Add(day), ptr(3600), t0.Add(day + time.Hour)},
		{"max grace", 30, t0.Add(day), ptr(keys.MaxGraceSeconds), t0.Add(8 * day)},
		{"capped at old expiry", 1, t0.Add(23 * time.Hour), ptr(7200), t0.Add(day)},
		{"capped exactly", 1, t0.Add(23 * time.Hour), ptr(3600), t0.Add(day)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			old, _ := h.create(keys.CreateCommand{Name: "k", Scope: "read", ExpiresDays: ptr(tt.expiresDays)}, t0)
			ev, _ := h.rotate(keys.RotateCommand{KeyID: old.KeyID, GraceSeconds: tt.grace}, tt.rotateAt)
			assert.Equal(t, tt.wantRevoked, ev.OldRevokedAt)
			assert.False(t, ev.OldRevokedAt.After(old.ExpiresAt), "grace never outlives old expiry")
		})
	}
}

func TestRotateGraceWindowAuthenticatesUntilRevokedAt(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	old, oldPlain := h.create(keys.CreateCommand{Name: "k", Scope: "read"}, t0)
	ev, newPlain := h.rotate(keys.RotateCommand{KeyID: old.KeyID, GraceSeconds: ptr(600)}, t0.Add(time.Hour))
	end := ev.OldRevokedAt
	require.Equal(t, t0.Add(time.Hour+10*time.Minute), end)

	tests := []struct {
		name      string
		plain     string
		now       time.Time
		wantValid bool
	}{
		{"old at rotation", oldPlain, t0.Add(time.Hour), true},
		{"old just before end", oldPlain, end.Add(-time.Nanosecond), true},
		{"old at end", oldPlain, end, false},
		{"old after end", oldPlain, end.Add(time.Minute), false},
		{"new at rotation", newPlain, t0.Add(time.Hour), true},
		{"new after end", newPlain, end.Add(time.Minute), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := authenticate(h.state, tt.plain, tt.now)
			if tt.wantValid {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, keys.ErrInvalidKey)
			}
		})
	}
}

func TestRotateErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	live, _ := h.create(keys.CreateCommand{Name: "live", Scope: "read"}, t0)
	short, _ := h.create(keys.CreateCommand{Name: "short", Scope: "read", ExpiresDays: ptr(1)}, t0)
	revoked, _ := h.create(keys.CreateCommand{Name: "revoked", Scope: "read"}, t0)
	h.revoke(revoked.KeyID, "", t0.Add(time.Minute))
	graced, _ := h.create(keys.CreateCommand{Name: "graced", Scope: "read"}, t0)
	h.rotate(keys.RotateCommand{KeyID: graced.KeyID, GraceSeconds: ptr(3600)}, t0.Add(time.Minute))
	now := t0.Add(2 * time.Minute)

	tests := []struct {
		name      string
		cmd       keys.RotateCommand
		now       time.Time
		wantIs    error
		wantField string
	}{
		{"unknown key", keys.RotateCommand{KeyID: keyID(999)}, now, keys.ErrNotFound, ""},
		{"empty id", keys.RotateCommand{}, now, keys.ErrNotFound, ""},
		{"negative grace", keys.RotateCommand{KeyID: live.KeyID, GraceSeconds: ptr(-1)}, now, nil, "grace_seconds"},
		{"grace above max", keys.RotateCommand{KeyID: live.KeyID, GraceSeconds: ptr(keys.MaxGraceSeconds + 1)}, now, nil, "grace_seconds"},
		{"revoked", keys.RotateCommand{KeyID: revoked.KeyID}, now, keys.ErrRevoked, ""},
		{"expired", keys.RotateCommand{KeyID: short.KeyID}, t0.Add(day), keys.ErrExpired, ""},
		{"already rotated, in grace", keys.RotateCommand{KeyID: graced.KeyID}, now, keys.ErrRotated, ""},
		{"already rotated, grace over", keys.RotateCommand{KeyID: graced.KeyID}, t0.Add(2 * time.Hour), keys.ErrRevoked, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, plain, err := keys.Rotate(h.state, tt.cmd, tt.now, keyID(500), entropy(40))
			require.Error(t, err)
			assert.Zero(t, ev)
			assert.Empty(t, plain)
			if tt.wantField != "" {
				var ve *keys.ValidationError
				require.ErrorAs(t, err, &ve)
				assert.Equal(t, tt.wantField, ve.Field)
				return
			}
			require.ErrorIs(t, err, tt.wantIs)
			if tt.wantIs != keys.ErrNotFound {
				require.ErrorIs(t, err, keys.ErrConflict, "409 family")
			}
		})
	}
}

func TestRevoke(t *testing.T) {
	t.Parallel()

	t.Run("unknown", func(t *testing.T) {
		t.Parallel()
		_, err := keys.Revoke(&keys.State{}, keyID(1), "", t0)
		require.ErrorIs(t, err, keys.ErrNotFound)
	})

	t.Run("twice is a conflict", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		k, plain := h.create(keys.CreateCommand{Name: "k", Scope: "read"}, t0)
		ev, err := keys.Revoke(h.state, k.KeyID, "", t0.Add(time.Minute))
		require.NoError(t, err)
		assert.Equal(t, keys.KeyRevoked{KeyID: k.KeyID, RevokedAt: t0.Add(time.Minute)}, ev)
		h.commit(ev)
		_, err = authenticate(h.state, plain, t0.Add(time.Minute))
		require.ErrorIs(t, err, keys.ErrInvalidKey)

		_, err = keys.Revoke(h.state, k.KeyID, "", t0.Add(2*time.Minute))
		require.ErrorIs(t, err, keys.ErrRevoked)
		require.ErrorIs(t, err, keys.ErrConflict)
	})

	t.Run("inside grace window revokes at once", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		old, oldPlain := h.create(keys.CreateCommand{Name: "k", Scope: "read"}, t0)
		rot, newPlain := h.rotate(keys.RotateCommand{KeyID: old.KeyID, GraceSeconds: ptr(3600)}, t0)
		leak := t0.Add(10 * time.Minute)
		_, err := authenticate(h.state, oldPlain, leak)
		require.NoError(t, err, "still in grace")

		h.revoke(old.KeyID, "", leak)
		k := mustKey(t, h.state, old.KeyID)
		require.NotNil(t, k.RevokedAt)
		assert.Equal(t, leak, *k.RevokedAt, "earlier than the scheduled end")
		assert.Equal(t, rot.NewKey.KeyID, k.RotatedTo)
		_, err = authenticate(h.state, oldPlain, leak)
		require.ErrorIs(t, err, keys.ErrInvalidKey)
		_, err = authenticate(h.state, newPlain, leak)
		require.NoError(t, err, "successor unaffected")

		_, err = keys.Revoke(h.state, old.KeyID, "", leak)
		require.ErrorIs(t, err, keys.ErrRevoked)
	})

	t.Run("expired key may be revoked", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		k, _ := h.create(keys.CreateCommand{Name: "k", Scope: "read", ExpiresDays: ptr(1)}, t0)
		_, err := keys.Revoke(h.state, k.KeyID, "", t0.Add(2*day))
		require.NoError(t, err)
	})
}

func TestRevokeLastAdmin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		setup   func(h *harness) (target, actor string)
		wantErr error
	}{
		{
			name: "last admin revokes itself",
			setup: func(h *harness) (string, string) {
				a, _ := h.create(keys.CreateCommand{Name: "admin", Scope: "admin"}, t0)
				h.create(keys.CreateCommand{Name: "reader", Scope: "read"}, t0)
				return a.KeyID, a.KeyID
			},
			wantErr: keys.ErrLastAdmin,
		},
		{
			name: "another admin is active",
			setup: func(h *harness) (string, string) {
				a, _ := h.create(keys.CreateCommand{Name: "admin", Scope: "admin"}, t0)
				h.create(keys.CreateCommand{Name: "admin 2", Scope: "admin"}, t0)
				return a.KeyID, a.KeyID
			},
		},
		{
			name: "other admins revoked or expired",
			setup: func(h *harness) (string, string) {
				a, _ := h.create(keys.CreateCommand{Name: "admin", Scope: "admin"}, t0)
				b, _ := h.create(keys.CreateCommand{Name: "revoked", Scope: "admin"}, t0)
				h.revoke(b.KeyID, a.KeyID, t0)
				h.create(keys.CreateCommand{Name: "expired", Scope: "admin", ExpiresAt: ptr(t0.Add(time.Minute))}, t0)
				return a.KeyID, a.KeyID
			},
			wantErr: keys.ErrLastAdmin,
		},
		{
			name: "other admin only alive in its grace window",
			setup: func(h *harness) (string, string) {
				a, _ := h.create(keys.CreateCommand{Name: "admin", Scope: "admin"}, t0)
				rot, _ := h.rotate(keys.RotateCommand{KeyID: a.KeyID, GraceSeconds: ptr(86400)}, t0)
				return rot.NewKey.KeyID, rot.NewKey.KeyID
			},
			wantErr: keys.ErrLastAdmin,
		},
		{
			name: "rotated admin in grace revokes itself, successor remains",
			setup: func(h *harness) (string, string) {
				a, _ := h.create(keys.CreateCommand{Name: "admin", Scope: "admin"}, t0)
				h.rotate(keys.RotateCommand{KeyID: a.KeyID, GraceSeconds: ptr(86400)}, t0)
				return a.KeyID, a.KeyID
			},
		},
		{
			name: "admin revoked by another key",
			setup: func(h *harness) (string, string) {
				a, _ := h.create(keys.CreateCommand{Name: "admin", Scope: "admin"}, t0)
				return a.KeyID, ""
			},
		},
		{
			name: "non-admin revokes itself",
			setup: func(h *harness) (string, string) {
				r, _ := h.create(keys.CreateCommand{Name: "reader", Scope: "read"}, t0)
				return r.KeyID, r.KeyID
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			target, actor := tt.setup(h)
			_, err := keys.Revoke(h.state, target, actor, t0.Add(time.Hour))
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			require.ErrorIs(t, err, keys.ErrConflict)
			assert.Contains(t, err.Error(), "lock")
		})
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, good := h.create(keys.CreateCommand{Name: "good", Scope: "evaluate", AgentID: "a1"}, t0)
	_, expired := h.create(keys.CreateCommand{Name: "expired", Scope: "read", ExpiresDays: ptr(1)}, t0)
	rev, revoked := h.create(keys.CreateCommand{Name: "revoked", Scope: "read", ExpiresDays: ptr(30)}, t0)
	h.revoke(rev.KeyID, "", t0.Add(time.Hour))
	unknown, err := keys.Generate(entropy(77))
	require.NoError(t, err)
	now := t0.Add(2 * day)

	last := good[len(good)-1:]
	swapped := "0"
	if last == "0" {
		swapped = "1"
	}
	tests := []struct {
		name  string
		plain string
	}{
		{"unknown", unknown},
		{"malformed", "cst_nope"},
		{"empty", ""},
		{"wrong checksum", good[:len(good)-1] + swapped},
		{"expired", expired},
		{"revoked", revoked},
		{"hash not key", hex.EncodeToString(func() []byte { h := keys.Hash(good); return h[:] }())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, err := authenticate(h.state, tt.plain, now)
			require.Equal(t, keys.ErrInvalidKey, err, "exactly ErrInvalidKey, no detail")
			assert.Zero(t, k)
		})
	}

	t.Run("good", func(t *testing.T) {
		t.Parallel()
		k, err := authenticate(h.state, good, now)
		require.NoError(t, err)
		assert.Equal(t, "good", k.Name)
		assert.Equal(t, keys.ScopeEvaluate, k.Scope)
		assert.Equal(t, "a1", k.AgentID)
		assert.Equal(t, keys.DisplayPrefix(good), k.Prefix)
	})
}

func TestShouldRecordUse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		last *time.Time
		want bool
	}{
		{"never used", nil, true},
		{"just used", ptr(t0), false},
		{"59s ago", ptr(t0.Add(-59 * time.Second)), false},
		{"one minute ago", ptr(t0.Add(-time.Minute)), true},
		{"an hour ago", ptr(t0.Add(-time.Hour)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, keys.ShouldRecordUse(keys.Key{LastUsedAt: tt.last}, t0))
		})
	}
}

func TestUseIsRecordedAtMostOncePerMinute(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, plain := h.create(keys.CreateCommand{Name: "k", Scope: "evaluate"}, t0)
	recorded := 0
	for s := 0; s < 180; s += 5 { // a request every 5 s for 3 minutes
		now := t0.Add(time.Duration(s) * time.Second)
		k, err := authenticate(h.state, plain, now)
		require.NoError(t, err)
		if keys.ShouldRecordUse(k, now) {
			h.commit(keys.KeyUsed{KeyID: k.KeyID, UsedAt: now})
			recorded++
		}
	}
	assert.Equal(t, 3, recorded)
}

func TestErrorFamilies(t *testing.T) {
	t.Parallel()
	for _, err := range []error{keys.ErrRevoked, keys.ErrExpired, keys.ErrRotated, keys.ErrLastAdmin} {
		assert.ErrorIs(t, err, keys.ErrConflict, err.Error())
		assert.NotErrorIs(t, err, keys.ErrNotFound)
		assert.True(t, strings.HasPrefix(err.Error(), "keys: "))
	}
	for _, err := range []error{keys.ErrNotFound, keys.ErrInvalidKey, keys.ErrUnknownEvent, keys.ErrInconsistent, keys.ErrMalformedID} {
		assert.NotErrorIs(t, err, keys.ErrConflict, err.Error())
	}
	assert.NotErrorIs(t, keys.ErrRevoked, keys.ErrExpired)
	ve := &keys.ValidationError{Field: "name", Problem: "must not be empty"}
	assert.Equal(t, "keys: invalid name: must not be empty", ve.Error())
}

// TestCreateSuperadmin checks that only CreateSuperadmin mints a superadmin
// key, that it folds like any key, and that the tenant scopes do not reach
// it.
func TestCreateSuperadmin(t *testing.T) {
	t.Parallel()
	_, _, err := keys.Create(&keys.State{}, keys.CreateCommand{Name: "root", Scope: string(keys.ScopeSuperadmin)}, t0, keyID(1), entropy(1))
	var ve *keys.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "scope", ve.Field)

	for _, cmd := range []keys.CreateCommand{
		{Name: "root", Scope: "admin"},
		{Name: "root", AgentID: "agent-1"},
	} {
		_, _, err := keys.CreateSuperadmin(&keys.State{}, cmd, t0, keyID(1), entropy(1))
		require.ErrorAs(t, err, &ve, "%+v", cmd)
	}

	var s keys.State
	ev, plain, err := keys.CreateSuperadmin(&s, keys.CreateCommand{Name: "root"}, t0, keyID(1), entropy(1))
	require.NoError(t, err)
	require.Equal(t, keys.ScopeSuperadmin, ev.Scope)
	require.NoError(t, keys.CheckFormat(plain))
	require.NoError(t, s.Apply(ev))
	_, err = keys.Authorize(&s, ev.KeyID, keys.ScopeSuperadmin, t0)
	require.NoError(t, err)
	_, err = keys.Authorize(&s, ev.KeyID, keys.ScopeEvaluate, t0)
	require.ErrorIs(t, err, keys.ErrInsufficientScope)
	admins, _ := s.ActiveAdmins(t0)
	require.Zero(t, admins, "a superadmin key is not a tenant admin")
}
