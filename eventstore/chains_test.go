package eventstore_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
)

// TestChainKeysArePrefixFree checks the property tenants rely on: a chain
// name ends at 0x00, a byte no chain name holds, so no key of one chain
// starts with the key prefix of another (acme against acme2), whatever the
// names' lengths. Head keys are the whole 'h' ‖ chain key and are only read
// by exact key, so they must differ, nothing more. Replay with CUSTOS_SEED.
func TestChainKeysArePrefixFree(t *testing.T) {
	rng := rand.New(rand.NewPCG(eventstoretest.Seed(t), 0))
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_"
	randomName := func() string {
		n := 1 + rng.IntN(8)
		b := []byte{alphabet[rng.IntN(26)]}
		for len(b) < n {
			b = append(b, alphabet[rng.IntN(len(alphabet))])
		}
		return string(b)
	}
	pairs := [][2]string{{"acme", "acme2"}, {"a", "a-"}, {"default", "default0"}, {"idx-a", "idx-a-b"}}
	for range 500 {
		a := randomName()
		pairs = append(pairs, [2]string{a, a + randomName()}, [2]string{a, randomName()})
	}
	keysOf := map[string]func(chain string, n uint64) []byte{
		"record":     eventstore.RecordKey,
		"tree":       eventstore.TreeKey,
		"checkpoint": eventstore.CheckpointKey,
	}
	for _, p := range pairs {
		for _, ab := range [][2]string{p, {p[1], p[0]}} {
			a, b := ab[0], ab[1]
			if a == b {
				continue
			}
			require.NoError(t, eventstore.ValidateChain(a))
			require.NoError(t, eventstore.ValidateChain(b))
			require.NotEqual(t, eventstore.HeadKey(a), eventstore.HeadKey(b))
			for kind, key := range keysOf {
				prefixB := key(b, 0)[:1+len(b)+1] // kind ‖ b ‖ 0x00
				for _, n := range []uint64{0, 1, rng.Uint64()} {
					require.False(t, bytes.HasPrefix(key(a, n), prefixB), "%s key of chain %q, seq %d, falls under chain %q", kind, a, n, b)
				}
			}
		}
	}
}

// TestChainsAndNamespacesDoNotMix appends to chains whose names prefix each
// other and writes the same keys into namespaces whose names prefix each
// other, on a real store on disk, and reads each back alone.
func TestChainsAndNamespacesDoNotMix(t *testing.T) {
	ctx := context.Background()
	s := open(t, vfs.Default, t.TempDir())
	chains := []string{"acme", "acme2", "acme-2", "a"}
	for i, chain := range chains {
		drafts := make([]eventstore.Draft, i+2)
		for j := range drafts {
			drafts[j] = eventstore.Draft{Type: "test.appended", Actor: "system:test", Payload: fmt.Appendf(nil, `{"chain":%q,"i":%d}`, chain, j)}
		}
		_, err := s.Append(ctx, chain, drafts...)
		require.NoError(t, err)

		aux, err := s.Aux("idx-" + chain)
		require.NoError(t, err)
		b, err := aux.NewBatch()
		require.NoError(t, err)
		for _, k := range []string{"", "k", "k\x00", "\x00"} {
			require.NoError(t, b.Set([]byte("p"+k), []byte(chain)))
		}
		require.NoError(t, b.Commit())
	}
	for i, chain := range chains {
		recs := allRecords(t, s, chain)
		require.Len(t, recs, i+2)
		for _, r := range recs {
			require.Contains(t, string(r.Payload), fmt.Sprintf(`"chain":%q`, chain))
		}
		head, err := s.Head(chain)
		require.NoError(t, err)
		require.Equal(t, uint64(i+2), head.Seq)

		aux, err := s.Aux("idx-" + chain)
		require.NoError(t, err)
		n := 0
		require.NoError(t, aux.Scan(ctx, nil, nil, func(_, v []byte) error {
			require.Equal(t, chain, string(v))
			n++
			return nil
		}))
		require.Equal(t, 4, n)
	}
}
