package policy_test

import (
	"encoding/json"

	"github.com/custos-dev/custos/domain/policy"
)

// encode stores ev as the domain does: its wire type and its json.Marshal
// encoding (see domain.Encode).
func encode(ev policy.Event) (string, []byte, error) {
	payload, err := json.Marshal(ev)
	return ev.EventType(), payload, err
}
