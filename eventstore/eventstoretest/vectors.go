package eventstoretest

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
)

// HashVector is one test vector of docs/hash-spec.md. The vectors in
// eventstore/testdata/hash_vectors.json were computed by an independent
// implementation of the spec (a few lines of Python with hashlib), not by
// custos.
type HashVector struct {
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

// HashVectors reads the vectors in the JSON file at path (at least three).
func HashVectors(t testing.TB, path string) []HashVector {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var vectors []HashVector
	require.NoError(t, json.Unmarshal(raw, &vectors))
	require.GreaterOrEqual(t, len(vectors), 3, path)
	return vectors
}

// Record returns the record v describes, with PrevHash and Hash as the
// vector gives them (Hash is not computed).
func (v HashVector) Record(t testing.TB) eventstore.Record {
	t.Helper()
	payload, err := base64.StdEncoding.DecodeString(v.Payload)
	require.NoError(t, err)
	r := eventstore.Record{
		Chain: v.Chain, Seq: v.Seq, ID: v.ID, Time: time.Unix(0, v.TimeUnixNano).UTC(),
		Type: v.Type, Actor: v.Actor, Payload: payload, HashVersion: v.HashVersion,
	}
	_, err = hex.Decode(r.PrevHash[:], []byte(v.PrevHash))
	require.NoError(t, err)
	_, err = hex.Decode(r.Hash[:], []byte(v.Hash))
	require.NoError(t, err)
	return r
}
