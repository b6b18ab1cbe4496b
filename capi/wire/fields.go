// Package wire turns the msgpack that crosses the C ABI into engine types
// and back. It is pure Go (no cgo) so that it can be unit tested and fuzzed.
package wire

import (
	"bytes"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/quicksand-go/quicksand/engine"
)

// fields is a decoded msgpack map whose keys are read one by one, each
// error naming its key. what ("config", "request") and kind say which
// error to give.
type fields struct {
	what string
	kind engine.Kind
	m    map[string]any
	used map[string]bool
}

// decodeMap decodes b, which must hold exactly one msgpack map with string
// keys. Empty input is an empty map.
func decodeMap(b []byte, what string, kind engine.Kind) (*fields, error) {
	f := &fields{what: what, kind: kind, m: map[string]any{}, used: map[string]bool{}}
	if len(b) == 0 {
		return f, nil
	}
	// Walk the bytes once without building anything: msgpack's generic
	// decoder allocates an array as long as its header claims before
	// reading it, so a 6-byte input could ask for gigabytes (found by
	// FuzzDecode), and it recurses once per nesting level. A successful
	// walk proves every length fits the input and bounds depth and count.
	if err := checkShape(b); err != nil {
		return nil, f.fail("", "%v", err)
	}
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	v, err := dec.DecodeInterface()
	if err != nil {
		return nil, f.fail("", "is not valid msgpack: %v", err)
	}
	if _, err := dec.PeekCode(); err == nil {
		return nil, f.fail("", "has bytes after its map")
	}
	switch m := v.(type) {
	case map[string]any:
		f.m = m
	case nil:
	default:
		return nil, f.fail("", "must be a msgpack map, not %s", typeName(v))
	}
	return f, nil
}

func (f *fields) fail(key, format string, args ...any) error {
	where := f.what
	if key != "" {
		where = fmt.Sprintf("%s key %q", f.what, key)
	}
	return &engine.Error{Kind: f.kind, Msg: where + " " + fmt.Sprintf(format, args...)}
}

// get returns the value of key; absent and nil are the same.
func (f *fields) get(key string) (any, bool) {
	f.used[key] = true
	v, ok := f.m[key]
	return v, ok && v != nil
}

// read lists the keys something asked for, sorted.
func (f *fields) read() []string {
	keys := make([]string, 0, len(f.used))
	for k := range f.used {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// unknown fails on the first key (alphabetically) that nothing read.
func (f *fields) unknown() error {
	var extra []string
	for k := range f.m {
		if !f.used[k] {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return nil
	}
	sort.Strings(extra)
	return f.fail(extra[0], "is not a known key")
}

func (f *fields) str(key string, dst *string) error {
	v, ok := f.get(key)
	if !ok {
		return nil
	}
	s, isStr := v.(string)
	if !isStr {
		return f.fail(key, "must be a string, not %s", typeName(v))
	}
	*dst = s
	return nil
}

func (f *fields) boolean(key string, dst *bool) error {
	v, ok := f.get(key)
	if !ok {
		return nil
	}
	b, isBool := v.(bool)
	if !isBool {
		return f.fail(key, "must be a boolean, not %s", typeName(v))
	}
	*dst = b
	return nil
}

// number reads any msgpack integer or float.
func (f *fields) number(key string) (float64, bool, error) {
	v, ok := f.get(key)
	if !ok {
		return 0, false, nil
	}
	n, isNum := toFloat(v)
	if !isNum {
		return 0, false, f.fail(key, "must be a number, not %s", typeName(v))
	}
	if math.IsNaN(n) || math.IsInf(n, 0) {
		return 0, false, f.fail(key, "must be a finite number")
	}
	return n, true, nil
}

// integer reads a number that must be whole (20 and 20.0 alike).
func (f *fields) integer(key string, dst *int) error {
	n, ok, err := f.number(key)
	if err != nil || !ok {
		return err
	}
	if n != math.Trunc(n) || math.Abs(n) > 1<<53 {
		return f.fail(key, "must be a whole number, not %v", n)
	}
	*dst = int(n)
	return nil
}

func (f *fields) strList(key string, dst *[]string) error {
	v, ok := f.get(key)
	if !ok {
		return nil
	}
	list, isList := v.([]any)
	if !isList {
		return f.fail(key, "must be an array of strings, not %s", typeName(v))
	}
	out := make([]string, len(list))
	for i, item := range list {
		s, isStr := item.(string)
		if !isStr {
			return f.fail(fmt.Sprintf("%s[%d]", key, i), "must be a string, not %s", typeName(item))
		}
		out[i] = s
	}
	*dst = out
	return nil
}

func (f *fields) strMap(key string, dst *map[string]string) error {
	v, ok := f.get(key)
	if !ok {
		return nil
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		return f.fail(key, "must be a map of strings, not %s", typeName(v))
	}
	out := make(map[string]string, len(m))
	for k, item := range m {
		s, isStr := item.(string)
		if !isStr {
			return f.fail(key+"."+k, "must be a string, not %s", typeName(item))
		}
		out[k] = s
	}
	*dst = out
	return nil
}

// bytesOrStr reads msgpack bin or str as bytes.
func (f *fields) bytesOrStr(key string, dst *[]byte) error {
	v, ok := f.get(key)
	if !ok {
		return nil
	}
	switch b := v.(type) {
	case []byte:
		*dst = b
	case string:
		*dst = []byte(b)
	default:
		return f.fail(key, "must be a string or binary, not %s", typeName(v))
	}
	return nil
}

// sub reads a nested map as fields of its own, named key.
func (f *fields) sub(key string, v any) (*fields, error) {
	m, isMap := v.(map[string]any)
	if !isMap {
		return nil, f.fail(key, "must be a map, not %s", typeName(v))
	}
	return &fields{what: f.what + " key " + fmt.Sprintf("%q", key) + " entry", kind: f.kind, m: m, used: map[string]bool{}}, nil
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case int8:
		return float64(n), true
	case int16:
		return float64(n), true
	case int32:
		return float64(n), true
	case int64:
		return float64(n), true
	case uint8:
		return float64(n), true
	case uint16:
		return float64(n), true
	case uint32:
		return float64(n), true
	case uint64:
		return float64(n), true
	case float32:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

// typeName names a decoded msgpack value's type in msgpack's words.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "nil"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case []byte:
		return "binary"
	case []any:
		return "an array"
	case map[string]any:
		return "a map"
	}
	if _, ok := toFloat(v); ok {
		return "a number"
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", v), "*")
}
