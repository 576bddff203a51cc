// Package docs holds documents that ship inside the custos binary: the
// OpenAPI description of the HTTP API (openapi.yaml), which httpapi serves as
// JSON on GET /openapi.json. The Markdown pages next to it are for readers
// of the repository only.
package docs

import _ "embed"

// OpenAPIYAML is docs/openapi.yaml: the OpenAPI 3.0 document of every route
// httpapi registers. Callers must not modify it.
//
//go:embed openapi.yaml
var OpenAPIYAML []byte
