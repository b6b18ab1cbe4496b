package wire

import (
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/quicksand-go/quicksand/engine"
)

func TestDecodeDisplay(t *testing.T) {
	for _, c := range []struct {
		in   any
		want *engine.Display
	}{
		{true, &engine.Display{}},
		{false, nil},
		{nil, nil},
		{map[string]any{}, &engine.Display{}},
		{map[string]any{"width": 1024, "height": 768.0, "vnc": true}, &engine.Display{Width: 1024, Height: 768, VNC: true}},
	} {
		b, _ := msgpack.Marshal(map[string]any{"display": c.in})
		cfg, err := DecodeConfig(b)
		if err != nil {
			t.Fatalf("%v: %v", c.in, err)
		}
		if (cfg.Display == nil) != (c.want == nil) || (c.want != nil && *cfg.Display != *c.want) {
			t.Errorf("%v decoded to %+v, want %+v", c.in, cfg.Display, c.want)
		}
	}
	for in, want := range map[string]any{
		`"display" must be a boolean or a map`:        "yes",
		`"display" entry key "width" must be a whole`: map[string]any{"width": 1.5},
		`"display" entry key "vnc" must be a boolean`: map[string]any{"vnc": "on"},
		`"display" entry key "depth" is not a known`:  map[string]any{"depth": 24},
	} {
		b, _ := msgpack.Marshal(map[string]any{"display": want})
		_, err := DecodeConfig(b)
		if engine.KindOf(err) != engine.KindInvalidConfig || !strings.Contains(err.Error(), in) {
			t.Errorf("%v: %v, want an invalid config saying %s", want, err, in)
		}
	}
}

func TestDecodeKeys(t *testing.T) {
	b, _ := msgpack.Marshal([]string{"ctrl", "alt", "t"})
	keys, err := DecodeKeys(b)
	if err != nil || strings.Join(keys, "+") != "ctrl+alt+t" {
		t.Fatalf("%v, %v", keys, err)
	}
	str, _ := msgpack.Marshal("Return")
	mixed, _ := msgpack.Marshal([]any{"a", 1})
	for name, c := range map[string]struct {
		in   []byte
		want string
	}{
		"empty":      {nil, "empty"},
		"a string":   {str, "must be an array of strings, not a string"},
		"a number":   {mixed, `"keys[1]" must be a string, not a number`},
		"trailing":   {append(b, 0xc0), "bytes after"},
		"truncated":  {b[:len(b)-1], "keys"},
		"huge array": {[]byte{0xdd, 0xff, 0xff, 0xff, 0xff}, "keys"},
	} {
		_, err := DecodeKeys(c.in)
		if engine.KindOf(err) != engine.KindBadRequest || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a bad request saying %q", name, err, c.want)
		}
	}
}

func TestEncodeVNC(t *testing.T) {
	var m map[string]any
	if err := msgpack.Unmarshal(EncodeVNC(engine.VNCInfo{Port: 5901, Password: "abcdefgh"}), &m); err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || m["password"] != "abcdefgh" || toInt(m["port"]) != 5901 {
		t.Errorf("%v", m)
	}
}

func toInt(v any) int {
	n, _ := toFloat(v)
	return int(n)
}
