package wire

import (
	"bytes"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/quicksand-go/quicksand/engine"
)

// mountFrom reads a mount map {host, guest, readonly}.
func mountFrom(f *fields) (engine.Mount, error) {
	var m engine.Mount
	for _, err := range []error{
		f.str("host", &m.HostPath),
		f.str("guest", &m.GuestPath),
		f.boolean("readonly", &m.ReadOnly),
	} {
		if err != nil {
			return m, err
		}
	}
	return m, f.unknown()
}

// DecodeMount reads qs_sandbox_mount's mount map.
func DecodeMount(b []byte) (engine.Mount, error) {
	f, err := decodeMap(b, "mount", engine.KindInvalidConfig)
	if err != nil {
		return engine.Mount{}, err
	}
	return mountFrom(f)
}

func mountMap(h engine.MountHandle) map[string]any {
	return map[string]any{"id": h.ID, "host": h.HostPath, "guest": h.GuestPath, "readonly": h.ReadOnly}
}

// EncodeMount encodes a mount handle: {id, host, guest, readonly}.
func EncodeMount(h engine.MountHandle) []byte { return encodeSorted(mountMap(h)) }

// EncodeMounts encodes a list of mount handles.
func EncodeMounts(hs []engine.MountHandle) []byte { return encodeMaps(hs, mountMap) }

// encodeMaps encodes a list as an array of the maps toMap makes of it.
func encodeMaps[T any](items []T, toMap func(T) map[string]any) []byte {
	list := make([]any, len(items))
	for i, it := range items {
		list[i] = toMap(it)
	}
	return encodeSorted(list)
}

// encodeSorted encodes maps with their keys in order (the same bytes every
// time).
func encodeSorted(v any) []byte {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	_ = enc.Encode(v) // maps of strings, numbers and bools cannot fail
	return buf.Bytes()
}
