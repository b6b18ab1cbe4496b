package wire

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/quicksand-go/quicksand/engine"
)

// nested is n arrays, each holding the next, around a nil.
func nested(n int) []byte {
	return append(bytes.Repeat([]byte{0x91}, n), 0xc0)
}

func TestCheckShapeAcceptsWhatMsgpackWrites(t *testing.T) {
	values := []any{
		nil, true, false, 0, 127, 128, -1, -33, 1 << 20, -1 << 40, uint64(1) << 63, 1.5, float32(2.5),
		"", "short", strings.Repeat("x", 40), strings.Repeat("y", 300), strings.Repeat("z", 70000),
		[]byte{}, []byte("bin"), bytes.Repeat([]byte{1}, 70000),
		[]any{}, []any{1, "a", nil}, make([]any, 20), make([]any, 70000/8),
		map[string]any{}, map[string]any{"a": 1, "b": []any{map[string]any{"c": "d"}}},
		msgpack.RawMessage{0xd4, 1, 2}, msgpack.RawMessage{0xc7, 3, 1, 'a', 'b', 'c'},
	}
	for _, v := range values {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkShape(b); err != nil {
			t.Errorf("%T %.40v: %v", v, v, err)
		}
	}
}

func TestCheckShapeRefuses(t *testing.T) {
	cases := map[string]struct {
		in   []byte
		want string
	}{
		"deep":            {nested(MaxDepth + 1), "nests deeper"},
		"2 MB of nesting": {nested(2 << 20), "nests deeper"},
		"map depth":       {append(bytes.Repeat([]byte{0x81, 0xa1, 'k'}, MaxDepth+1), 0xc0), "nests deeper"},
		"many values":     {append([]byte{0xdd, 0, 2, 0, 0}, bytes.Repeat([]byte{0xc0}, 2<<16)...), "more than"},
		"never used byte": {[]byte{0xc1}, "not a msgpack type"},
		"truncated str":   {[]byte{0xa5, 'a'}, "truncated"},
		"truncated len":   {[]byte{0xdb, 0, 0}, "truncated"},
		"lying array":     {[]byte{0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0}, "promises"},
		"lying map":       {[]byte{0xdf, 0x7f, 0xff, 0xff, 0xff}, "promises"},
		"trailing bytes":  {[]byte{0xc0, 0xc0}, "after its value"},
		"empty":           {[]byte{}, "truncated"},
	}
	for name, c := range cases {
		err := checkShape(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error with %q", name, err, c.want)
		}
	}
	if err := checkShape(nested(MaxDepth)); err != nil {
		t.Errorf("depth %d is allowed: %v", MaxDepth, err)
	}
}

// A request or config of deeply nested arrays is an error of the right
// kind, not a stack overflow (which killed the caller's process).
func TestDecodeDeepNestingIsAnError(t *testing.T) {
	deep := nested(3 << 20)
	if _, err := DecodeRequest(deep); engine.KindOf(err) != engine.KindBadRequest || !strings.Contains(err.Error(), "nests deeper") {
		t.Fatalf("request: %v", err)
	}
	cfg := append([]byte{0x81, 0xa5, 'i', 'm', 'a', 'g', 'e'}, nested(2<<20)...)
	if _, err := DecodeConfig(cfg); engine.KindOf(err) != engine.KindInvalidConfig || !strings.Contains(err.Error(), "nests deeper") {
		t.Fatalf("config: %v", err)
	}
}
