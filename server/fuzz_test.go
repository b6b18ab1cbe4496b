package server

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzServerRequests sends the handler any method, path, query, key and
// body. The server has no image to boot (a create fails at once), so what
// is fuzzed is everything before the engine: routing, keys, JSON, query
// parsing. No input may panic, and every answer is a known status with a
// JSON error body or a success.
func FuzzServerRequests(f *testing.F) {
	dir := f.TempDir()
	keys := filepath.Join(dir, "keys")
	os.WriteFile(keys, []byte(keyA+"\n"), 0o600)
	f.Setenv("QUICKSAND_IMAGE_PATH", filepath.Join(dir, "no-images"))
	f.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	srv, err := New(Options{Listen: "127.0.0.1:0", KeysFile: keys, DataDir: filepath.Join(dir, "server"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	defer srv.listener.Close()
	h := srv.Handler()
	for _, rt := range routes {
		path := strings.NewReplacer("{id}", "sb-1", "{process}", "p").Replace(rt.path)
		f.Add(rt.method, path, keyA, []byte(`{"command":"true"}`))
	}
	f.Add("POST", "/v1/sandboxes", keyA, []byte(`{"image":"debian","memory":"1G","metadata":{"a":"b"},"timeout":1}`))
	f.Add("POST", "/v1/sandboxes", keyA, []byte(`{"mounts":[{"host":"/","guest":"/m"}]}`))
	f.Add("GET", "/v1/sandboxes?metadata=a%3Db&metadata=c", keyA, []byte(nil))
	f.Add("GET", "/v1/sandboxes/sb-1/files?path=/x&max_size=-5", "", []byte(nil))
	f.Add("0", "/.", "", []byte(nil)) // found by the fuzzer: the mux's redirect to the clean path
	f.Fuzz(func(t *testing.T, method, target, key string, body []byte) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n\x00#") || len(method) == 0 || strings.ContainsAny(method, " \r\n\x00/") {
			return // not an HTTP request line net/http would hand a handler
		}
		req, err := http.NewRequest(method, "http://x"+target, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+key)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 201, 204:
			return
		case 301, 307, 308:
			return // net/http's mux sends a path that is not clean ("/.", "//x") to the clean one
		case 400, 401, 404, 405, 409, 499, 500, 502, 503, 504:
		default:
			t.Fatalf("%s %s: status %d", method, target, rec.Code)
		}
		if rec.Code == 405 {
			return // net/http's own answer to a known path with another method
		}
		var e struct {
			Error struct{ Kind, Message string }
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Kind == "" || e.Error.Message == "" {
			t.Fatalf("%s %s: %d with body %q", method, target, rec.Code, rec.Body.Bytes())
		}
		if rec.Code == 500 {
			t.Fatalf("%s %s: a 500 for input before the engine: %s", method, target, rec.Body.Bytes())
		}
	})
}
