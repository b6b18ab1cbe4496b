package wire

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/quicksand-go/quicksand/engine"
)

func TestDecodeNetworkPolicy(t *testing.T) {
	b, _ := msgpack.Marshal(map[string]any{"allow_out": []string{"pypi.org:443"}, "deny_out": []string{"10.0.0.0/8"},
		"hosts": map[string][]string{"db.test": {"198.19.0.9", "::1"}}})
	p, err := DecodeNetworkPolicy(b)
	if err != nil {
		t.Fatal(err)
	}
	if p.AllowOut[0] != "pypi.org:443" || p.DenyOut[0] != "10.0.0.0/8" || len(p.Hosts["db.test"]) != 2 || p.Hosts["db.test"][0] != netip.MustParseAddr("198.19.0.9") {
		t.Errorf("decoded %+v", p)
	}
	if p, err := DecodeNetworkPolicy(nil); p != nil || err != nil {
		t.Errorf("empty input: %v, %v (want no policy)", p, err)
	}
	for in, want := range map[string]string{
		`{"allow_out": "a"}`:               `"allow_out" must be an array`,
		`{"allow_out": [1]}`:               `"allow_out[0]" must be a string`,
		`{"hosts": {"a": ["nope"]}}`:       `"hosts.a[0]" "nope" is not an IP address`,
		`{"hosts": {"a": "1.2.3.4"}}`:      `"hosts.a" must be an array`,
		`{"allowed_out": []}`:              `"allowed_out" is not a known key`,
		`{"network_policy": {"deny": []}}`: `"deny" is not a known key`,
		`{"network_policy": ["a"]}`:        `"network_policy" must be a map`,
	} {
		var m map[string]any
		if err := json.Unmarshal([]byte(in), &m); err != nil {
			t.Fatal(err)
		}
		raw, _ := msgpack.Marshal(m)
		var err error
		if _, ok := m["network_policy"]; ok {
			_, err = DecodeConfig(raw)
		} else {
			_, err = DecodeNetworkPolicy(raw)
		}
		if err == nil || !strings.Contains(err.Error(), want) || engine.KindOf(err) != engine.KindInvalidConfig {
			t.Errorf("%s: %v, want an invalid config error with %q", in, err, want)
		}
	}
}
