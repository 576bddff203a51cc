package readside

import (
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/agents"
	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/domain/policy"
	"github.com/custos-dev/custos/eventstore"
)

// indexFieldsSamples returns records of every event type, decisions in
// every shape the index distinguishes.
func indexFieldsSamples(t testing.TB) []eventstore.Record {
	t.Helper()
	now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	ttl := 60
	pol := policy.Policy{Name: "p-analyst", PolicyID: "pol_1", AgentRole: "analyst", AllowedSources: []string{"crm"},
		AllowedActions: []policy.Action{"read"}, SessionTTLMinutes: &ttl, Version: 2, CreatedAt: now, UpdatedAt: now}
	agent := agents.Agent{AgentID: "agent-1", AgentRole: "analyst", PermittedRoles: []string{"viewer"}, Status: "approved",
		CreatedAt: now, UpdatedAt: now, StatusChangedAt: now}
	created := keys.KeyCreated{KeyID: "key_NEW", Name: "n", Scope: keys.ScopeEvaluate, Prefix: "cst_abcdef",
		KeyHash: strings.Repeat("ab", 32), CreatedAt: now, ExpiresAt: now.Add(time.Hour), AgentID: "agent-1"}
	rotatedNew := created
	rotatedNew.KeyID, rotatedNew.RotatedFrom = "key_ROT", "key_OLD"
	req := policy.Request{AgentRole: "analyst", AgentID: "agent-1", UserID: "u", SourceID: "crm", Sensitivity: policy.LevelMedium,
		SessionID: "sess-1", Action: policy.ActionRead, Query: "q", PrincipalClaims: []string{"group:x"}}
	made := func(edit func(m *decision.Made)) decision.Made {
		m := decision.Made{Request: req, Decision: decision.Allow, Reason: "Access granted", PolicyName: "p-analyst",
			PolicyID: "pol_1", PolicyVersion: 2, EvaluatedRole: "analyst", KeyID: "key_A", EvaluatedAt: now}
		edit(&m)
		return m
	}
	type sample struct {
		actor string
		ev    domain.Event
	}
	samples := []sample{
		{"key_A", made(func(*decision.Made) {})},
		{"key_B", made(func(*decision.Made) {})}, // actor differs from the deciding key
		{"key_A", made(func(m *decision.Made) { m.EvaluatedRole = "viewer-canonical" })},
		{"key_A", made(func(m *decision.Made) { m.EvaluatedRole = "" })},
		{"key_A", made(func(m *decision.Made) {
			m.Decision, m.DenialType, m.Reason, m.PolicyID, m.PolicyVersion = decision.Deny, "source_denied", "denied", "", 0
			m.Request.SessionID, m.Request.AgentID, m.Request.SourceID = "", "", ""
		})},
		{"key_A", made(func(m *decision.Made) {
			m.SessionStarted = &decision.SessionStarted{SessionID: "sess-1", OwnerRole: "analyst", OwnerAgentID: "agent-1",
				StartedAt: now, ExpiresAt: &now}
			m.Request.Query = `with "quotes", \backslashes\ and unicode é`
		})},
		{"system:init", made(func(m *decision.Made) { m.KeyID = "" })},
		{"system:policy-sync", created},
		{"key_A", created},
		{"key_NEW", keys.KeyRotated{OldKeyID: "key_OLD", OldRevokedAt: now, NewKey: rotatedNew}},
		{"key_A", keys.KeyRotated{OldKeyID: "key_OLD", OldRevokedAt: now, NewKey: rotatedNew}},
		{"key_A", keys.KeyRevoked{KeyID: "key_A", RevokedAt: now}},
		{"key_A", keys.KeyRevoked{KeyID: "key_B", RevokedAt: now}},
		{"key_A", keys.KeyUsed{KeyID: "key_A", UsedAt: now}},
		{"key_A", policy.PolicyCreated{Policy: pol}},
		{"key_A", policy.PolicyUpdated{Policy: pol}},
		{"key_A", policy.PolicyDeleted{PolicyID: "pol_1", Name: "p-analyst", AgentRole: "analyst", Version: 2, DeletedAt: now}},
		{"key_A", agents.AgentRegistered{Agent: agent}},
		{"key_A", agents.AgentUpdated{Agent: agent}},
		{"key_A", agents.AgentStatusChanged{AgentID: "agent-1", From: "approved", To: "suspended", ChangedAt: now}},
	}
	types := map[string]bool{}
	var out []eventstore.Record
	for i, s := range samples {
		payload, err := domain.Encode(s.ev)
		if err != nil {
			t.Fatalf("sample %d: %v", i, err)
		}
		types[s.ev.EventType()] = true
		out = append(out, eventstore.Record{Seq: uint64(i + 1), Type: s.ev.EventType(), Actor: s.actor, Payload: payload, Time: now})
	}
	for _, typ := range []string{decision.TypeMade, keys.TypeKeyCreated, keys.TypeKeyRotated, keys.TypeKeyRevoked, keys.TypeKeyUsed,
		policy.TypePolicyCreated, policy.TypePolicyUpdated, policy.TypePolicyDeleted,
		agents.TypeAgentRegistered, agents.TypeAgentUpdated, agents.TypeAgentStatusChanged} {
		if !types[typ] {
			t.Fatalf("no sample of %s", typ)
		}
	}
	return out
}

// TestFastFieldsEqualFields checks that the index's fast path (decoding only
// what it needs of a decision) gives exactly what Fields gives, for every
// event type.
func TestFastFieldsEqualFields(t *testing.T) {
	for _, r := range indexFieldsSamples(t) {
		want, err := Fields(r)
		if err != nil {
			t.Fatalf("seq %d %s: Fields: %v", r.Seq, r.Type, err)
		}
		got, err := fastFields(r)
		if err != nil {
			t.Fatalf("seq %d %s: fastFields: %v", r.Seq, r.Type, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("seq %d %s: fastFields\n%v\nFields\n%v", r.Seq, r.Type, got, want)
		}
		var pairs, wantPairs []string
		err = eachField(r.Type, r.Actor, r.Payload, func(field, value string) error {
			pairs = append(pairs, field+"="+value)
			return nil
		})
		if err != nil {
			t.Fatalf("seq %d %s: eachField: %v", r.Seq, r.Type, err)
		}
		for field, values := range want {
			for _, v := range values {
				wantPairs = append(wantPairs, field+"="+v)
			}
		}
		slices.Sort(pairs)
		slices.Sort(wantPairs)
		if !slices.Equal(pairs, wantPairs) {
			t.Errorf("seq %d %s: eachField %v, want %v", r.Seq, r.Type, pairs, wantPairs)
		}
	}
	if _, err := fastFields(eventstore.Record{Type: decision.TypeMade, Payload: []byte(`{"request":`)}); err == nil {
		t.Error("fastFields accepted a truncated decision")
	}
}

// TestIndexCatchUpMatchesFields indexes every sample through CatchUp and
// checks each posting against Fields, and that queries agree with a scan.
func TestIndexCatchUpMatchesFields(t *testing.T) {
	ctx := context.Background()
	store, err := eventstore.Open(eventstore.Options{Dir: t.TempDir(), CreateIfMissing: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close() }()
	samples := indexFieldsSamples(t)
	for _, r := range samples {
		if _, err := store.Append(ctx, eventstore.DefaultChain, eventstore.Draft{Time: r.Time, Type: r.Type, Actor: r.Actor, Payload: r.Payload}); err != nil {
			t.Fatal(err)
		}
	}
	ix, err := NewIndex(store, eventstore.DefaultChain, nil)
	if err != nil {
		t.Fatal(err)
	}
	through, err := ix.CatchUp(ctx)
	if err != nil || through != uint64(len(samples)) {
		t.Fatalf("CatchUp = %d, %v; want %d", through, err, len(samples))
	}
	for _, r := range samples {
		fields, err := Fields(r)
		if err != nil {
			t.Fatal(err)
		}
		for field, values := range fields {
			for _, v := range values {
				if !posted(field, v) {
					continue // answered from the log, see posted
				}
				var seqs []uint64
				err := ix.postings(ctx, field, v, 0, through, func(seq uint64) error { seqs = append(seqs, seq); return nil })
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Contains(seqs, r.Seq) {
					t.Errorf("posting %s=%q lacks seq %d", field, v, r.Seq)
				}
			}
		}
	}
	for _, f := range []EventFilter{{AgentRole: "viewer-canonical"}, {KeyID: "key_B"}, {Decision: decision.Deny}, {SessionID: "sess-1", KeyID: "key_A"}, {Type: keys.TypeKeyRotated}, {Type: decision.TypeMade, Decision: decision.Allow}} {
		var want, got []uint64
		for _, r := range samples {
			fields, _ := Fields(r)
			if f.Matches(fields) {
				want = append(want, r.Seq)
			}
		}
		_, _, err := ix.Query(ctx, f, 0, 0, func(r eventstore.Record) error { got = append(got, r.Seq); return nil })
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("Query(%+v) = %v, want %v", f, got, want)
		}
	}
}

// FuzzFastFields checks that the index's decoder (goccy/go-json) reads the
// indexed fields of any payload exactly as encoding/json does, and accepts
// what it accepts. Payloads are always valid UTF-8 (json.Marshal writes
// them), so only those are compared.
func FuzzFastFields(f *testing.F) {
	for _, r := range indexFieldsSamples(f) {
		if r.Type == decision.TypeMade {
			f.Add(r.Payload)
		}
	}
	f.Add([]byte(`{"request":{"session_id":"a\u00e9\"b","AGENT_ID":"x","agent_id":"y"},"decision":"DENY","decision":"ALLOW"}`))
	f.Add([]byte(`{"request":null,"key_id":"k","evaluated_role":"r","extra":[1,{"a":true}],"n":-1.5e3}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		if !utf8.Valid(payload) {
			return // never stored: json.Marshal writes valid UTF-8
		}
		var want madeIndexed
		wantErr := json.Unmarshal(payload, &want)
		var got madeIndexed
		gotErr := gojson.Unmarshal(payload, &got)
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("%q: encoding/json error %v, goccy error %v", payload, wantErr, gotErr)
		}
		if wantErr == nil && got != want {
			t.Fatalf("%q: goccy %+v, encoding/json %+v", payload, got, want)
		}
	})
}
