package keys_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"hash/crc32"
	"io"
	"math/big"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/domain/keys"
)

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// decode62 is an independent (math/big) base62 decoder for checking the
// format from outside.
func decode62(t *testing.T, s string) *big.Int {
	t.Helper()
	n := new(big.Int)
	for _, c := range s {
		i := strings.IndexRune(alphabet, c)
		require.GreaterOrEqual(t, i, 0, "char %q", c)
		n.Mul(n, big.NewInt(62))
		n.Add(n, big.NewInt(int64(i)))
	}
	return n
}

func TestGenerateRoundTrip(t *testing.T) {
	t.Parallel()
	pattern := regexp.MustCompile(keys.Pattern)
	random := make([]byte, 32)
	_, err := io.ReadFull(entropy(7), random)
	require.NoError(t, err)
	tests := []struct {
		name string
		raw  []byte
	}{
		{"zero", make([]byte, 32)},
		{"one", append(make([]byte, 31), 1)},
		{"max", bytes.Repeat([]byte{0xff}, 32)},
		{"high bit", append([]byte{0x80}, make([]byte, 31)...)},
		{"random", random},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key, err := keys.Generate(bytes.NewReader(tt.raw))
			require.NoError(t, err)
			require.Len(t, key, keys.KeyLength)
			require.Regexp(t, pattern, key)
			require.NoError(t, keys.CheckFormat(key))

			body, sum := key[4:47], key[47:]
			assert.Zero(t, new(big.Int).SetBytes(tt.raw).Cmp(decode62(t, body)), "body encodes the entropy")
			assert.Equal(t, int64(crc32.ChecksumIEEE([]byte(body))), decode62(t, sum).Int64(), "checksum is CRC-32 IEEE of the body")
			assert.Equal(t, "cst_"+body[:6], keys.DisplayPrefix(key))
		})
	}
}

// TestGenerateGolden pins the format byte for byte. The vectors were checked
// with an independent implementation (Python int + zlib.crc32).
func TestGenerateGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		raw  []byte
		want string
	}{
		{"zero", make([]byte, 32), "cst_00000000000000000000000000000000000000000002CZclj"},
		{"max", bytes.Repeat([]byte{0xff}, 32), "cst_yhjskwdA6OZ1AL1YmHWZWm8LLG7HjnuCA2j5rOw8Xp13sRzl1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key, err := keys.Generate(bytes.NewReader(tt.raw))
			require.NoError(t, err)
			require.Equal(t, tt.want, key)
		})
	}
}

func TestGenerateMatchesPattern(t *testing.T) {
	t.Parallel()
	pattern := regexp.MustCompile(keys.Pattern)
	rng := entropy(3)
	seen := map[string]bool{}
	for range 1000 {
		key, err := keys.Generate(rng)
		require.NoError(t, err)
		require.Regexp(t, pattern, key)
		require.NoError(t, keys.CheckFormat(key))
		require.False(t, seen[key], "duplicate key")
		seen[key] = true
	}
}

func TestGenerateEntropyFailure(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	tests := []struct {
		name string
		r    io.Reader
		want error
	}{
		{"error", iotest.ErrReader(boom), boom},
		{"short", bytes.NewReader(make([]byte, 31)), io.ErrUnexpectedEOF},
		{"empty", bytes.NewReader(nil), io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key, err := keys.Generate(tt.r)
			require.ErrorIs(t, err, tt.want)
			require.Empty(t, key)
		})
	}
}

func TestGenerateShortReads(t *testing.T) {
	t.Parallel()
	raw := bytes.Repeat([]byte{0xab}, 32)
	a, err := keys.Generate(iotest.OneByteReader(bytes.NewReader(raw)))
	require.NoError(t, err)
	b, err := keys.Generate(bytes.NewReader(raw))
	require.NoError(t, err)
	require.Equal(t, b, a)
}

func TestCheckFormatRejectsOneCharChange(t *testing.T) {
	t.Parallel()
	key, err := keys.Generate(entropy(9))
	require.NoError(t, err)
	for i := len(keys.KeyPrefix); i < len(key); i++ {
		for _, c := range []byte(alphabet) {
			if c == key[i] {
				continue
			}
			changed := key[:i] + string(c) + key[i+1:]
			err := keys.CheckFormat(changed)
			require.ErrorIs(t, err, keys.ErrInvalidKey, "position %d to %q", i, c)
		}
	}
}

func TestCheckFormatMalformed(t *testing.T) {
	t.Parallel()
	good, err := keys.Generate(entropy(11))
	require.NoError(t, err)
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"prefix only", "cst_"},
		{"too short", good[:len(good)-1]},
		{"too long", good + "0"},
		{"wrong prefix", "cst-" + good[4:]},
		{"upper prefix", "CST_" + good[4:]},
		{"other vendor", "ghp_" + good[4:]},
		{"dash in body", good[:10] + "-" + good[11:]},
		{"space in checksum", good[:50] + " " + good[51:]},
		{"non-ASCII", good[:20] + "é" + good[22:]},
		{"checksum swapped", good[:47] + good[48:] + good[47:48]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.ErrorIs(t, keys.CheckFormat(tt.in), keys.ErrInvalidKey)
		})
	}
	require.NoError(t, keys.CheckFormat(good))
}

func TestCheckFormatDoesNotAllocate(t *testing.T) {
	key, err := keys.Generate(entropy(12))
	require.NoError(t, err)
	bad := key[:50] + "!" + key[51:]
	allocs := testing.AllocsPerRun(100, func() {
		_ = keys.CheckFormat(key)
		_ = keys.CheckFormat(bad)
	})
	require.Zero(t, allocs)
}

func TestHash(t *testing.T) {
	t.Parallel()
	key, err := keys.Generate(entropy(13))
	require.NoError(t, err)
	tests := []struct{ name, in string }{
		{"key", key},
		{"other length", key + "0"},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, sha256.Sum256([]byte(tt.in)), keys.Hash(tt.in))
		})
	}
}

func TestDisplayPrefix(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"key", "cst_AbCdEf" + strings.Repeat("0", 43), "cst_AbCdEf"},
		{"short", "cst_A", "cst_A"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, keys.DisplayPrefix(tt.in))
		})
	}
}

func TestScopeAllows(t *testing.T) {
	t.Parallel()
	tests := []struct {
		have, need keys.Scope
		want       bool
	}{
		{keys.ScopeAdmin, keys.ScopeAdmin, true},
		{keys.ScopeAdmin, keys.ScopeRead, true},
		{keys.ScopeAdmin, keys.ScopeEvaluate, true},
		{keys.ScopeRead, keys.ScopeAdmin, false},
		{keys.ScopeRead, keys.ScopeRead, true},
		{keys.ScopeRead, keys.ScopeEvaluate, true},
		{keys.ScopeEvaluate, keys.ScopeAdmin, false},
		{keys.ScopeEvaluate, keys.ScopeRead, false},
		{keys.ScopeEvaluate, keys.ScopeEvaluate, true},
		{"", keys.ScopeEvaluate, false},
		{"root", keys.ScopeEvaluate, false},
		{keys.ScopeAdmin, "", false},
		{keys.ScopeAdmin, "root", false},
		{keys.ScopeSuperadmin, keys.ScopeSuperadmin, true},
		{keys.ScopeSuperadmin, keys.ScopeAdmin, false},
		{keys.ScopeSuperadmin, keys.ScopeRead, false},
		{keys.ScopeSuperadmin, keys.ScopeEvaluate, false},
		{keys.ScopeAdmin, keys.ScopeSuperadmin, false},
		{keys.ScopeRead, keys.ScopeSuperadmin, false},
		{keys.ScopeEvaluate, keys.ScopeSuperadmin, false},
		{"", keys.ScopeSuperadmin, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.have)+"/"+string(tt.need), func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, tt.have.Allows(tt.need))
		})
	}
}

func TestParseScope(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want keys.Scope
		ok   bool
	}{
		{"admin", keys.ScopeAdmin, true},
		{"read", keys.ScopeRead, true},
		{"evaluate", keys.ScopeEvaluate, true},
		{"Admin", "", false},
		{" read", "", false},
		{"", "", false},
		{"write", "", false},
		{"superadmin", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := keys.ParseScope(tt.in)
			if !tt.ok {
				var ve *keys.ValidationError
				require.ErrorAs(t, err, &ve)
				assert.Equal(t, "scope", ve.Field)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
