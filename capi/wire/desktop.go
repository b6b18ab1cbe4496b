package wire

import (
	"bytes"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/quicksand-go/quicksand/engine"
)

// The desktop's maps and lists (include/quicksand.h, "Desktop").

// display reads the config key display: true (a screen of the default
// size), false (none), or a map {width, height, vnc}. Sizes are checked by
// the engine (engine.Config's Display).
func display(f *fields, key string, dst **engine.Display) error {
	v, ok := f.get(key)
	if !ok {
		return nil
	}
	switch d := v.(type) {
	case bool:
		if d {
			*dst = &engine.Display{}
		}
		return nil
	case map[string]any:
		sub, err := f.sub(key, d)
		if err != nil {
			return err
		}
		var out engine.Display
		for _, err := range []error{sub.integer("width", &out.Width), sub.integer("height", &out.Height), sub.boolean("vnc", &out.VNC)} {
			if err != nil {
				return err
			}
		}
		if err := sub.unknown(); err != nil {
			return err
		}
		*dst = &out
		return nil
	}
	return f.fail(key, "must be a boolean or a map {width, height, vnc}, not %s", typeName(v))
}

// DecodeKeys reads qs_sandbox_press_key's keys: a msgpack array of
// strings, pressed in order.
func DecodeKeys(b []byte) ([]string, error) {
	f := &fields{what: "qs_sandbox_press_key's", kind: engine.KindBadRequest, m: map[string]any{}, used: map[string]bool{}}
	if len(b) == 0 {
		return nil, f.fail("keys", "are empty: give a msgpack array of key names")
	}
	// As decodeMap: the shape is walked before anything is built.
	if err := checkShape(b); err != nil {
		return nil, f.fail("keys", "%v", err)
	}
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	v, err := dec.DecodeInterface()
	if err != nil {
		return nil, f.fail("keys", "are not valid msgpack: %v", err)
	}
	if _, err := dec.PeekCode(); err == nil {
		return nil, f.fail("keys", "have bytes after their array")
	}
	f.m["keys"] = v
	var keys []string
	if err := f.strList("keys", &keys); err != nil {
		return nil, err
	}
	return keys, nil
}

// EncodeVNC encodes {port, password}.
func EncodeVNC(v engine.VNCInfo) []byte {
	return encodeSorted(map[string]any{"port": v.Port, "password": v.Password})
}
