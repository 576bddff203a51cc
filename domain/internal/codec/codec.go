// Package codec decodes event payloads by their wire names, for the domain
// subpackages: one implementation of "look the type up, unmarshal into its
// struct, wrap the error", instead of one switch per package.
package codec

import (
	"encoding/json"
	"fmt"
)

// Decoder decodes the payload of one event type into an event of interface
// type E.
type Decoder[E any] func(payload []byte) (E, error)

// As returns the Decoder that unmarshals a payload into a T and returns it
// as E (T must implement E), after normalize when it is not nil.
func As[T any, E any](normalize func(*T)) Decoder[E] {
	return func(payload []byte) (E, error) {
		var v T
		if err := json.Unmarshal(payload, &v); err != nil {
			var zero E
			return zero, err
		}
		if normalize != nil {
			normalize(&v)
		}
		return any(v).(E), nil
	}
}

// Decode decodes payload with the decoder registered for typ. Errors name
// pkg and typ; an unknown typ wraps unknown. Unknown JSON fields are
// ignored, so a log written by a newer version that only added fields still
// decodes.
func Decode[E any](pkg string, decoders map[string]Decoder[E], typ string, payload []byte, unknown error) (E, error) {
	decode, ok := decoders[typ]
	if !ok {
		var zero E
		return zero, fmt.Errorf("%s: decode %q: %w", pkg, typ, unknown)
	}
	e, err := decode(payload)
	if err != nil {
		return e, fmt.Errorf("%s: decode %s: %w", pkg, typ, err)
	}
	return e, nil
}
