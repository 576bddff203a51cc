package eventstore_test

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/custos-dev/custos/eventstore"
	"github.com/custos-dev/custos/eventstore/eventstoretest"
)

func TestGoldenHashVectors(t *testing.T) {
	t.Parallel()
	for _, v := range eventstoretest.HashVectors(t, "testdata/hash_vectors.json") {
		t.Run(v.Chain+"/"+v.ID, func(t *testing.T) {
			t.Parallel()
			r := v.Record(t)
			r.Hash = eventstore.Hash{}
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
