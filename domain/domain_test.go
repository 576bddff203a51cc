package domain_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/custos-dev/custos/domain"
	"github.com/custos-dev/custos/domain/agents"
	"github.com/custos-dev/custos/domain/alerts"
	"github.com/custos-dev/custos/domain/decision"
	"github.com/custos-dev/custos/domain/keys"
	"github.com/custos-dev/custos/domain/policy"
	"github.com/custos-dev/custos/domain/tenants"
)

// TestEventTypesAreKnown checks that Decode knows every listed type, and
// does not know a made-up one of each prefix.
func TestEventTypesAreKnown(t *testing.T) {
	t.Parallel()
	unknown := []error{domain.ErrUnknownEvent, keys.ErrUnknownEvent, policy.ErrUnknownEvent, agents.ErrUnknownEvent, decision.ErrUnknownEvent, alerts.ErrUnknownEvent, tenants.ErrUnknownEvent}
	seen := map[string]bool{}
	for _, typ := range domain.EventTypes() {
		assert.False(t, seen[typ], "listed twice: %s", typ)
		seen[typ] = true
		_, err := domain.Decode(typ, []byte("{}"))
		for _, u := range unknown {
			assert.NotErrorIs(t, err, u, typ)
		}
	}
	for _, typ := range []string{"key.nope", "policy.nope", "agent.nope", "decision.nope", "alert.nope", "tenant.nope", "nope"} {
		_, err := domain.Decode(typ, []byte("{}"))
		assert.Error(t, err, typ)
	}
}
