// Package wire is the JSON contract of the custos HTTP API: every request
// body the server reads and every response body it writes, as one set of Go
// types shared by the handlers (httpapi) and the Go client
// (httpapi/client).
//
// The field names, shapes and null rules are what AutoPIL's Python clients
// already read and send: they are append-only, never renamed, never
// retyped. docs/openapi.yaml describes the same bodies; a test in httpapi
// round-trips every type here through a real server and the client.
//
// Request types carry omitempty where the Go client leaves a field out;
// the server reads absent, null and the zero value alike, and refuses
// unknown or repeated field names (see httpapi's package doc, "Bodies").
// Response types are written as declared: a field without omitempty is
// always present, and a pointer field is null when unset.
//
// Times are RFC 3339 in UTC. Importing wire pulls in only the standard
// library and the pure domain packages: no HTTP framework, no store.
package wire
