package wire

import (
	"time"

	"github.com/quicksand-go/quicksand/engine"
)

// A server's sandboxes (include/quicksand.h, "Sandboxes a server keeps"):
// the config keys that make a sandbox a server's, the options of
// qs_sandbox_connect and qs_sandbox_list, and the list they return.

// idleTimeout reads idle_timeout: seconds, a negative number for never
// (engine.Config.IdleTimeout's meaning), 0 or absent for the server's
// default.
func idleTimeout(f *fields, key string, dst *time.Duration) error {
	n, ok, err := f.number(key)
	if err != nil || !ok {
		return err
	}
	if n > float64(1<<62)/float64(time.Second) {
		return f.fail(key, "must be at most %d seconds, not %v", int64(1<<62/time.Second), n)
	}
	if n < 0 {
		*dst = -1 // never
		return nil
	}
	*dst = time.Duration(n * float64(time.Second))
	return nil
}

// remoteFrom reads server and api_key.
func remoteFrom(f *fields) (o engine.RemoteOptions, err error) {
	if err := f.str("server", &o.Server); err != nil {
		return o, err
	}
	return o, f.str("api_key", &o.APIKey)
}

// DecodeConnectOptions reads qs_sandbox_connect's options: {server, api_key}.
func DecodeConnectOptions(b []byte) (engine.RemoteOptions, error) {
	f, err := decodeMap(b, "connect options", engine.KindInvalidConfig)
	if err != nil {
		return engine.RemoteOptions{}, err
	}
	o, err := remoteFrom(f)
	if err != nil {
		return o, err
	}
	return o, f.unknown()
}

// DecodeListOptions reads qs_sandbox_list's options: {server, api_key,
// metadata}.
func DecodeListOptions(b []byte) (engine.RemoteOptions, map[string]string, error) {
	f, err := decodeMap(b, "list options", engine.KindInvalidConfig)
	if err != nil {
		return engine.RemoteOptions{}, nil, err
	}
	return listFrom(f)
}

func listFrom(f *fields) (engine.RemoteOptions, map[string]string, error) {
	o, err := remoteFrom(f)
	if err != nil {
		return o, nil, err
	}
	var metadata map[string]string
	if err := f.strMap("metadata", &metadata); err != nil {
		return o, nil, err
	}
	return o, metadata, f.unknown()
}

// ConnectKeys and ListKeys are the keys those decoders read, for
// internal/contract.
func ConnectKeys() []string {
	f, _ := decodeMap(nil, "connect options", engine.KindInvalidConfig)
	_, _ = remoteFrom(f)
	return f.read()
}

func ListKeys() []string {
	f, _ := decodeMap(nil, "list options", engine.KindInvalidConfig)
	_, _, _ = listFrom(f)
	return f.read()
}

// EncodeSandboxList is qs_sandbox_list's array: [{id, metadata, image,
// running, created (seconds since the epoch), idle_timeout (seconds, 0:
// never)}].
func EncodeSandboxList(list []engine.SandboxSummary) []byte {
	out := make([]any, len(list))
	for i, s := range list {
		metadata := s.Metadata
		if metadata == nil {
			metadata = map[string]string{}
		}
		created := 0.0
		if !s.Created.IsZero() {
			created = float64(s.Created.UnixNano()) / 1e9
		}
		out[i] = map[string]any{"id": s.ID, "metadata": metadata, "image": s.Image, "running": s.Running,
			"created": created, "idle_timeout": s.IdleTimeout.Seconds()}
	}
	return encodeSorted(out)
}
