package server

import (
	"net/http"
	"strings"
	"testing"
)

// everyRouteRefusesStrangers tries every route of the table (so a new
// route cannot be missed) without a key, with a wrong key, and with
// another tenant's: 401, 401, and for a route naming the sandbox 404 with
// the same words as for an id that does not exist. Tenant A's sandbox id
// must still be there afterwards (B's DELETE did nothing).
func everyRouteRefusesStrangers(t *testing.T, s *testServer, id string) {
	for _, rt := range routes {
		path := strings.NewReplacer("{id}", id, "{process}", "p-none").Replace(rt.path)
		for _, key := range []string{"", wrongKey, "Bearer", keyA + " "} {
			if key == keyA+" " {
				continue // a key with space is trimmed: it is A's
			}
			status, body := s.do(rt.method, path, key, map[string]any{})
			if rt.public {
				if status != http.StatusOK {
					t.Errorf("%s %s (public) with key %q: %d %s", rt.method, rt.path, key, status, body)
				}
				continue
			}
			if status != http.StatusUnauthorized || !strings.Contains(string(body), `"kind":"auth"`) {
				t.Errorf("%s %s with key %q: %d %s, want 401", rt.method, rt.path, key, status, body)
			}
		}
		if !strings.Contains(rt.path, "{id}") {
			continue
		}
		status, body := s.do(rt.method, path, keyB, map[string]any{})
		_, unknown := s.do(rt.method, strings.Replace(path, id, "sb-00000000000000000000000000000000", 1), keyB, map[string]any{})
		if status != http.StatusNotFound || string(body) != strings.Replace(string(unknown), "sb-00000000000000000000000000000000", id, 1) {
			t.Errorf("%s %s with another tenant's key: %d %s, want the 404 of an unknown id (%s)", rt.method, rt.path, status, body, unknown)
		}
	}
	s.must(http.StatusOK, "GET", "/v1/sandboxes/"+id, keyA, nil, nil)
}
