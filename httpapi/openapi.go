package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
	"go.yaml.in/yaml/v3"

	"github.com/custos-dev/custos/docs"
)

// openAPIJSON converts the embedded OpenAPI document (docs/openapi.yaml) to
// JSON. New calls it once, so a document that does not parse stops the
// server from starting rather than failing its first reader.
func openAPIJSON() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(docs.OpenAPIYAML, &doc); err != nil {
		return nil, fmt.Errorf("httpapi: parse docs/openapi.yaml: %w", err)
	}
	out, err := json.Marshal(jsonValue(doc))
	if err != nil {
		return nil, fmt.Errorf("httpapi: convert docs/openapi.yaml to JSON: %w", err)
	}
	return out, nil
}

// jsonValue turns what the YAML decoder produced into values encoding/json
// accepts: mappings with non-string keys (a status code such as 200 written
// without quotes) become objects keyed by the key's text.
func jsonValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = jsonValue(e)
		}
		return v
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[fmt.Sprint(k)] = jsonValue(e)
		}
		return m
	case []any:
		for i, e := range v {
			v[i] = jsonValue(e)
		}
		return v
	}
	return v
}

// serveOpenAPI handles GET /openapi.json: the OpenAPI document of this API,
// public like the probes.
func (s *Server) serveOpenAPI(c echo.Context) error {
	return c.JSONBlob(http.StatusOK, s.openapi)
}
