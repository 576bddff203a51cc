package policy_test

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/policy"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
)

// TestGlobMatchesFnmatchTranslation compares permitted_agent_ids glob
// matching with the regular expression Python's fnmatch.translate builds,
// on random patterns and ids. The seed is logged.
func TestGlobMatchesFnmatchTranslation(t *testing.T) {
	t.Parallel()
	seed := eventstoretest.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 0))
	lits := []string{"a", "b", "/", "-", ".", "é", "\\", "^"}
	classes := []struct{ glob, re string }{
		{"[ab]", "[ab]"}, {"[!ab]", "[^ab]"}, {"[a-c]", "[a-c]"}, {"[!/]", "[^/]"}, {"[]a]", `[\]a]`}, {"[^a]", `[\^a]`},
	}
	alphabet := []rune("ab/-.cé\\^]")
	for range 300 {
		var g, re strings.Builder
		for range rng.IntN(7) {
			switch k := rng.IntN(10); {
			case k < 4:
				l := lits[rng.IntN(len(lits))]
				g.WriteString(l)
				re.WriteString(regexp.QuoteMeta(l))
			case k < 6:
				g.WriteString("*")
				re.WriteString(".*")
			case k < 8:
				g.WriteString("?")
				re.WriteString(".")
			default:
				c := classes[rng.IntN(len(classes))]
				g.WriteString(c.glob)
				re.WriteString(c.re)
			}
		}
		pattern := g.String()
		if pattern == "" {
			continue
		}
		want := regexp.MustCompile(`^(?s:` + re.String() + `)$`)
		p := basePolicy()
		p.PermittedAgentIDs = []string{pattern}
		c, err := policy.Compile(p)
		require.NoError(t, err, pattern)
		for range 30 {
			id := make([]rune, 1+rng.IntN(8))
			for i := range id {
				id[i] = alphabet[rng.IntN(len(alphabet))]
			}
			req := baseRequest()
			req.AgentID = string(id)
			require.Equal(t, want.MatchString(req.AgentID), c.Evaluate(req, 0).Allowed,
				"pattern %q id %q (regexp %s)", pattern, req.AgentID, want)
		}
	}
}
