package eventstoretest

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// SeedEnv names the environment variable that replays a random test: a
// test that draws its seed from Seed logs it, and
//
//	CUSTOS_SEED=<seed> go test -run '^TestName$' ./package
//
// runs it again with the same choices.
const SeedEnv = "CUSTOS_SEED"

// Seed returns the seed of a random test: the value of CUSTOS_SEED when it
// is set (the test fails when it is not a number), a new one otherwise. It
// logs the seed with the command line that replays it, so that a failure's
// output is enough to reproduce it.
func Seed(t testing.TB) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v, ok := os.LookupEnv(SeedEnv); ok {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("%s=%q: want an unsigned integer: %v", SeedEnv, v, err)
		}
	}
	t.Logf("seed %d (replay: %s=%d go test -run '^%s$')", seed, SeedEnv, seed, t.Name())
	return seed
}
