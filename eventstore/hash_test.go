package eventstore_test

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
)

// hashVector is one test vector of docs/hash-spec.md. The vectors in
// testdata/hash_vectors.json were computed by an independent implementation
// of the spec (a few lines of Python with hashlib), not by this package.
type hashVector struct {
	HashVersion  uint16 `json:"hash_version"`
	Chain        string `json:"chain"`
	Seq          uint64 `json:"seq"`
	ID           string `json:"id"`
	TimeUnixNano int64  `json:"time_unix_nano"`
	Type         string `json:"type"`
	Actor        string `json:"actor"`
	Payload      string `json:"payload_base64"`
	PrevHash     string `json:"prev_hash"`
	EncodingHex  string `json:"encoding_hex"`
	Hash         string `json:"hash"`
}

func TestGoldenHashVectors(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("testdata/hash_vectors.json")
	require.NoError(t, err)
	var vectors []hashVector
	require.NoError(t, json.Unmarshal(raw, &vectors))
	require.GreaterOrEqual(t, len(vectors), 3)
	for _, v := range vectors {
		t.Run(v.Chain+"/"+v.ID, func(t *testing.T) {
			t.Parallel()
			payload, err := base64.StdEncoding.DecodeString(v.Payload)
			require.NoError(t, err)
			prev, err := hex.DecodeString(v.PrevHash)
			require.NoError(t, err)
			r := eventstore.Record{
				Chain: v.Chain, Seq: v.Seq, ID: v.ID, Time: time.Unix(0, v.TimeUnixNano).UTC(),
				Type: v.Type, Actor: v.Actor, Payload: payload, HashVersion: v.HashVersion,
			}
			copy(r.PrevHash[:], prev)
			assert.Equal(t, v.EncodingHex, hex.EncodeToString(r.Encode(nil)), "canonical encoding")
			h := r.ComputeHash()
			assert.Equal(t, v.Hash, hex.EncodeToString(h[:]), "record hash")

			// The stored form parses back to the same record.
			r.Hash = h
			stored := append(r.Encode(nil), h[:]...)
			view, err := eventstore.ParseStored(stored)
			require.NoError(t, err)
			assert.Equal(t, r, view.Record())
		})
	}
}

func TestParseStoredRejectsMalformed(t *testing.T) {
	t.Parallel()
	r := eventstore.Record{Chain: "default", Seq: 1, ID: "01JQ7Z6V0000000000000000AA", Type: "t", HashVersion: 1}
	good := append(r.Encode(nil), make([]byte, eventstore.HashSize)...)
	for name, b := range map[string][]byte{
		"empty":             nil,
		"shorter than hash": good[:10],
		"truncated field":   good[:len(good)-eventstore.HashSize-40],
		"trailing bytes":    append(append(r.Encode(nil), 0xAA), make([]byte, eventstore.HashSize)...),
		"length too large":  append([]byte{0, 1, 0xff, 0xff, 0xff, 0xff}, good[6:]...),
	} {
		_, err := eventstore.ParseStored(b)
		require.ErrorIs(t, err, eventstore.ErrMalformedRecord, name)
	}
}
