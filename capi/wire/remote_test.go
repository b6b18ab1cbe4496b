package wire

import (
	"strings"
	"testing"
	"time"
)

// The config keys of a server's sandbox reach engine.Config; a negative
// idle timeout is "never" whatever its size.
func TestConfigCarriesTheServerKeys(t *testing.T) {
	c, err := DecodeConfig(pack(t, map[string]any{"server": "unix:/s", "api_key": "k", "metadata": map[string]any{"job": "7"}, "idle_timeout": 90.5}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server != "unix:/s" || c.APIKey != "k" || c.Metadata["job"] != "7" || c.IdleTimeout != 90500*time.Millisecond {
		t.Fatalf("decoded %+v", c)
	}
	for _, never := range []any{-1, -0.001, -1e300} {
		c, err := DecodeConfig(pack(t, map[string]any{"idle_timeout": never}))
		if err != nil || c.IdleTimeout >= 0 {
			t.Errorf("idle_timeout %v: %v, %v", never, c.IdleTimeout, err)
		}
	}
	for v, want := range map[any]string{"60": "idle_timeout", 1e300: "idle_timeout"} {
		if _, err := DecodeConfig(pack(t, map[string]any{"idle_timeout": v})); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("idle_timeout %v: %v", v, err)
		}
	}
	if _, err := DecodeConfig(pack(t, map[string]any{"metadata": map[string]any{"a": 1}})); err == nil || !strings.Contains(err.Error(), `metadata.a`) {
		t.Errorf("metadata of a number: %v", err)
	}
}

func TestConnectAndListOptions(t *testing.T) {
	o, err := DecodeConnectOptions(pack(t, map[string]any{"server": "http://127.0.0.1:1", "api_key": "k"}))
	if err != nil || o.Server != "http://127.0.0.1:1" || o.APIKey != "k" {
		t.Fatalf("%+v %v", o, err)
	}
	if _, err := DecodeConnectOptions(pack(t, map[string]any{"metadata": map[string]any{}})); err == nil || !strings.Contains(err.Error(), `"metadata" is not a known key`) {
		t.Errorf("connect took a metadata filter: %v", err)
	}
	_, m, err := DecodeListOptions(pack(t, map[string]any{"metadata": map[string]any{"a": "b"}}))
	if err != nil || m["a"] != "b" {
		t.Fatalf("%v %v", m, err)
	}
	if _, _, err := DecodeListOptions(nil); err != nil {
		t.Errorf("no options: %v", err)
	}
}
