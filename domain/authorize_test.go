package domain_test

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/domain/tenants"
)

// auditRecord is one record of a hand-built log: the actor, the offset of
// its time from t0 and the event.
type auditRecord struct {
	actor string
	at    time.Duration
	ev    domain.Event
}

func keyCreated(id string, scope keys.Scope, at, life time.Duration) keys.KeyCreated {
	h := sha256.Sum256([]byte(id))
	return keys.KeyCreated{
		KeyID: id, Name: id, Scope: scope, Prefix: "cst_x", KeyHash: hex.EncodeToString(h[:]),
		CreatedAt: t0.Add(at), ExpiresAt: t0.Add(at + life),
	}
}

func decisionBy(keyID, outcome string) decision.Made {
	return decision.Made{Decision: outcome, KeyID: keyID, Reason: "r", PolicyName: "p"}
}

func TestAuditorReportsEveryViolationKind(t *testing.T) {
	t.Parallel()
	const day = 24 * time.Hour
	const (
		admin1 = "key_00000000000000000000000001"
		admin2 = "key_00000000000000000000000002"
		reader = "key_00000000000000000000000003"
		agent  = "key_00000000000000000000000004"
	)
	genesis := []auditRecord{
		{domain.SystemActorPrefix + "init", 0, keyCreated(admin1, keys.ScopeAdmin, 0, 90*day)},
		{admin1, time.Second, keyCreated(reader, keys.ScopeRead, time.Second, 365*day)},
		{admin1, 2 * time.Second, keyCreated(agent, keys.ScopeEvaluate, 2*time.Second, time.Hour)},
	}
	tests := []struct {
		name  string
		then  []auditRecord
		kinds []string // kinds found, in order
		seqs  []uint64
	}{
		{name: "clean log", then: []auditRecord{
			{agent, time.Minute, decisionBy(agent, decision.Allow)},
			{reader, time.Minute, decisionBy(reader, decision.Deny)},
			{admin1, 2 * time.Minute, keys.KeyRevoked{KeyID: agent, RevokedAt: t0.Add(2 * time.Minute)}},
		}},
		{name: "ALLOW after the key's revocation", then: []auditRecord{
			{admin1, time.Minute, keys.KeyRevoked{KeyID: agent, RevokedAt: t0.Add(time.Minute)}},
			{agent, time.Minute, decisionBy(agent, decision.Allow)},
		}, kinds: []string{domain.ViolationAllowByInvalidKey}, seqs: []uint64{5}},
		{name: "DENY by an expired key", then: []auditRecord{
			{agent, 2 * time.Hour, decisionBy(agent, decision.Deny)},
		}, kinds: []string{domain.ViolationActorInvalid}, seqs: []uint64{4}},
		{name: "key created by a revoked admin key", then: []auditRecord{
			{admin1, time.Minute, keyCreated(admin2, keys.ScopeAdmin, time.Minute, day)},
			{admin2, 2 * time.Minute, keys.KeyRevoked{KeyID: admin1, RevokedAt: t0.Add(2 * time.Minute)}},
			{admin1, 3 * time.Minute, keyCreated("key_00000000000000000000000009", keys.ScopeAdmin, 3*time.Minute, day)},
		}, kinds: []string{domain.ViolationActorInvalid}, seqs: []uint64{6}},
		{name: "unknown actor key", then: []auditRecord{
			{"key_00000000000000000000000077", time.Minute, keys.KeyRevoked{KeyID: agent, RevokedAt: t0.Add(time.Minute)}},
		}, kinds: []string{domain.ViolationActorInvalid}, seqs: []uint64{4}},
		{name: "read key changes a key", then: []auditRecord{
			{reader, time.Minute, keys.KeyRevoked{KeyID: agent, RevokedAt: t0.Add(time.Minute)}},
		}, kinds: []string{domain.ViolationActorScope}, seqs: []uint64{4}},
		{name: "last admin key revoked, reported once per stretch", then: []auditRecord{
			{admin1, time.Minute, keys.KeyRevoked{KeyID: admin1, RevokedAt: t0.Add(time.Minute)}},
			{reader, 2 * time.Minute, decisionBy(reader, decision.Deny)},
			{domain.SystemActorPrefix + "reset", 3 * time.Minute, keyCreated(admin2, keys.ScopeAdmin, 3*time.Minute, day)},
			{admin2, 4 * time.Minute, keys.KeyRevoked{KeyID: admin2, RevokedAt: t0.Add(4 * time.Minute)}},
		}, kinds: []string{domain.ViolationNoActiveAdmin, domain.ViolationNoActiveAdmin}, seqs: []uint64{4, 7}},
		{name: "last admin key expires between records", then: []auditRecord{
			{reader, 91 * day, decisionBy(reader, decision.Deny)},
			{reader, 91*day + time.Minute, decisionBy(reader, decision.Deny)},
		}, kinds: []string{domain.ViolationNoActiveAdmin}, seqs: []uint64{4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := domain.NewAuditor()
			var kinds []string
			var seqs []uint64
			for i, r := range append(append([]auditRecord(nil), genesis...), tt.then...) {
				seq := uint64(i + 1)
				found, err := a.Record(domain.Meta{Seq: seq, ID: "ev", Time: t0.Add(r.at), Actor: r.actor}, r.ev)
				require.NoError(t, err)
				for _, v := range found {
					require.Equal(t, seq, v.Seq)
					require.Equal(t, r.actor, v.Actor)
					require.NotEmpty(t, v.Detail)
					kinds, seqs = append(kinds, v.Kind), append(seqs, v.Seq)
				}
			}
			require.Equal(t, tt.kinds, kinds)
			require.Equal(t, tt.seqs, seqs)
		})
	}
}

func TestAuthorizeEvent(t *testing.T) {
	t.Parallel()
	const admin, agent = "key_00000000000000000000000001", "key_00000000000000000000000002"
	s := domain.NewState()
	require.NoError(t, s.Apply(domain.Meta{Seq: 1}, keyCreated(admin, keys.ScopeAdmin, 0, time.Hour)))
	require.NoError(t, s.Apply(domain.Meta{Seq: 2}, keyCreated(agent, keys.ScopeEvaluate, 0, time.Hour)))
	revoke := keys.KeyRevoked{KeyID: agent, RevokedAt: t0}
	tests := []struct {
		name  string
		actor string
		ev    domain.Event
		at    time.Duration
		want  error
	}{
		{"admin revokes", admin, revoke, time.Minute, nil},
		{"system actor needs no key", domain.SystemActorPrefix + "init", revoke, time.Minute, nil},
		{"evaluate key decides", agent, decisionBy(agent, decision.Allow), time.Minute, nil},
		{"evaluate key records its use", agent, keys.KeyUsed{KeyID: agent, UsedAt: t0}, time.Minute, nil},
		{"evaluate key may not revoke", agent, revoke, time.Minute, keys.ErrInsufficientScope},
		{"expired admin key", admin, revoke, 2 * time.Hour, keys.ErrInvalidKey},
		{"unknown key", "key_00000000000000000000000009", revoke, time.Minute, keys.ErrInvalidKey},
		{"before its creation is still its own state", admin, revoke, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := s.AuthorizeEvent(tt.actor, tt.ev, t0.Add(tt.at))
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
		})
	}
}

// TestTenantEventsNeedASuperadmin checks who may record what on a tenant's
// chain: tenant events only by the system or a superadmin, and a superadmin
// nothing else; the Auditor reports a break of either.
func TestTenantEventsNeedASuperadmin(t *testing.T) {
	t.Parallel()
	const admin = "key_00000000000000000000000001"
	s := domain.NewState()
	require.NoError(t, s.Apply(domain.Meta{Seq: 1, Time: t0}, keyCreated(admin, keys.ScopeAdmin, 0, time.Hour)))
	created := tenants.TenantCreated{TenantID: "acme", CreatedAt: t0}
	suspended := tenants.TenantSuspended{TenantID: "acme", SuspendedAt: t0}
	superadmin := domain.SuperadminActorPrefix + "key_00000000000000000000000009"
	for _, tc := range []struct {
		actor string
		ev    domain.Event
		err   error
	}{
		{domain.SystemActorPrefix + "init", created, nil},
		{superadmin, created, nil},
		{superadmin, suspended, nil},
		{admin, created, keys.ErrInsufficientScope},
		{admin, suspended, keys.ErrInsufficientScope},
		// A superadmin mints a tenant's admin keys, and nothing else.
		{superadmin, keyCreated("key_00000000000000000000000002", keys.ScopeAdmin, 0, time.Hour), nil},
		{superadmin, keyCreated("key_00000000000000000000000003", keys.ScopeRead, 0, time.Hour), keys.ErrInvalidKey},
		{superadmin, keys.KeyRevoked{KeyID: admin, RevokedAt: t0}, keys.ErrInvalidKey},
		{superadmin, decisionBy(superadmin, decision.Allow), keys.ErrInvalidKey},
		{admin, keys.KeyRevoked{KeyID: admin, RevokedAt: t0}, nil},
	} {
		err := s.AuthorizeEvent(tc.actor, tc.ev, t0)
		if tc.err == nil {
			require.NoError(t, err, "%s %s", tc.actor, tc.ev.EventType())
			continue
		}
		require.ErrorIs(t, err, tc.err, "%s %s", tc.actor, tc.ev.EventType())
	}

	// While the chain's tenant is suspended its keys record nothing; a
	// superadmin still can (resume).
	suspendedState := domain.NewState()
	require.NoError(t, suspendedState.Apply(domain.Meta{Seq: 1, Time: t0}, keyCreated(admin, keys.ScopeAdmin, 0, time.Hour)))
	require.NoError(t, suspendedState.Apply(domain.Meta{Seq: 2, Time: t0}, created))
	require.NoError(t, suspendedState.Apply(domain.Meta{Seq: 3, Time: t0}, suspended))
	require.ErrorIs(t, suspendedState.AuthorizeEvent(admin, keys.KeyRevoked{KeyID: admin, RevokedAt: t0}, t0), tenants.ErrTenantSuspended)
	require.NoError(t, suspendedState.AuthorizeEvent(superadmin, tenants.TenantResumed{TenantID: "acme", ResumedAt: t0}, t0))

	a := domain.NewAuditor()
	var kinds []string
	for i, r := range []auditRecord{
		{domain.SystemActorPrefix + "init", 0, keyCreated(admin, keys.ScopeAdmin, 0, time.Hour)},
		{superadmin, time.Second, created},
		{admin, 2 * time.Second, suspended},
		{superadmin, 3 * time.Second, keys.KeyRevoked{KeyID: admin, RevokedAt: t0.Add(3 * time.Second)}},
	} {
		v, err := a.Record(domain.Meta{Seq: uint64(i + 1), Time: t0.Add(r.at), Actor: r.actor}, r.ev)
		require.NoError(t, err)
		for _, x := range v {
			kinds = append(kinds, x.Kind)
		}
	}
	require.Equal(t, []string{domain.ViolationActorScope, domain.ViolationActorInvalid, domain.ViolationNoActiveAdmin}, kinds)
}
