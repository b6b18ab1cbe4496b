package contract

import (
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/quicksand-go/quicksand/capi/wire"
	"github.com/quicksand-go/quicksand/engine"
)

// The maps the C ABI hands back (results, info, processes, mounts, files,
// images): their keys as include/quicksand.h documents them ("key type"
// pairs), as capi/wire builds them, and as each binding reads them.

// headerMapKeys are the "key type" pairs of the header between from and to.
func headerMapKeys(t *testing.T, src, from, to string) []string {
	t.Helper()
	i := strings.Index(src, from)
	if i < 0 {
		t.Fatalf("the header has no %q", from)
	}
	j := strings.Index(src[i:], to)
	if j < 0 {
		t.Fatalf("the header has no %q after %q", to, from)
	}
	// One line: the comment's " * " margins go.
	text := strings.Join(strings.Fields(strings.ReplaceAll(src[i:i+j], "\n *", " ")), " ")
	var keys []string
	for _, m := range regexp.MustCompile(`\b([a-z][a-z0-9_]*) (?:str|int|bool|float|bin|map|array)\b`).FindAllStringSubmatch(text, -1) {
		if prose[m[1]] {
			continue // "msgpack map", "an array", "a map"
		}
		if !slices.Contains(keys, m[1]) {
			keys = append(keys, m[1])
		}
	}
	sort.Strings(keys)
	return keys
}

// prose are words before a type word that are not keys.
var prose = map[string]bool{"msgpack": true, "a": true, "an": true, "of": true}

// notRead are keys a binding does not turn into its own types, and why.
var notRead = map[string]string{
	"agent_addr":           "the guest agent's address: for the C and Go callers' diagnostics; the bindings do not show it",
	"output_channel":       "whether output takes the virtio-serial channel: shown by the Go API and C only",
	"output_channel_error": "why the virtio-serial channel is not used: shown by the Go API and C only",
}

// wireKeys are the keys of every map in a msgpack value, at any depth.
func wireKeys(t *testing.T, b []byte) []string {
	t.Helper()
	var v any
	if err := msgpack.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				seen[k] = true
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func concat(bs ...[]byte) []byte {
	// Several values as one array: their keys together.
	out := []byte{0xdc, 0, byte(len(bs))}
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// outputMaps: each map the C ABI returns, where the header documents it,
// what capi/wire makes of values with every optional field set, and the
// binding files that read it.
func outputMaps(t *testing.T) []struct {
	name, from, to string
	wire           []byte
	python, node   []string
} {
	info, err := msgpack.Marshal(wire.Info{OutputChannelError: "why"})
	if err != nil {
		t.Fatal(err)
	}
	file := engine.FileInfo{Target: "t"}
	return []struct {
		name, from, to string
		wire           []byte
		python, node   []string
	}{
		{"execute result", "result (required)", "A command that fails",
			wire.EncodeResult(&engine.ExecResult{}, func(n int) []byte { return make([]byte, n) }),
			[]string{"types.py"}, []string{"calls.js"}},
		{"info", "Facts about a sandbox", "Works after stop", info,
			[]string{"_core.py", "types.py"}, []string{"sandbox.js"}},
		{"process", "out (may be NULL): msgpack map", "\n", wire.EncodeProcess(&engine.Process{}),
			[]string{"sandbox.py", "sync.py"}, []string{"sandbox.js"}},
		{"process list", "qs_sandbox_processes: an array", "for the processes",
			wire.EncodeProcesses([]engine.ProcessInfo{{}}), []string{"_processes.py"}, []string{"process.js"}},
		{"mount handle", "handle (may be NULL): msgpack map", "qs_sandbox_unmount takes",
			wire.EncodeMount(engine.MountHandle{}), []string{"types.py"}, []string{"mounts.js"}},
		{"file result", "qs_sandbox_file_op's result", "nothing for",
			concat(wire.EncodeFileResult(&file, nil, false), wire.EncodeFileResult(nil, []engine.FileInfo{file}, true)),
			[]string{"_files.py", "types.py"}, []string{"files.js"}},
		{"image list", "list is a msgpack array of", "qs_image_install:",
			wire.EncodeImages([]engine.ImageEntry{{}}), []string{"_imagecli.py"}, nil},
	}
}

func TestReturnedMapsAreTheHeaders(t *testing.T) {
	src := read(t, "include/quicksand.h")
	for _, m := range outputMaps(t) {
		doc := headerMapKeys(t, src, m.from, m.to)
		if len(doc) == 0 {
			t.Errorf("%s: the header documents no keys", m.name)
			continue
		}
		if got := wireKeys(t, m.wire); !slices.Equal(got, doc) {
			t.Errorf("%s keys: header %v, capi/wire %v", m.name, doc, got)
		}
		// Each binding reads every documented key in the files that turn
		// the map into its own types: a key added or renamed in the header
		// fails here until the bindings read it.
		for _, b := range []struct {
			dir   string
			files []string
			read  func(key string) *regexp.Regexp
		}{
			{"bindings/python/quicksand/", m.python, func(k string) *regexp.Regexp { return regexp.MustCompile(`["']` + k + `["']`) }},
			{"bindings/node/lib/", m.node, func(k string) *regexp.Regexp {
				return regexp.MustCompile(`\.` + k + `\b|['"]` + k + `['"]|\{[^}]*\b` + k + `\b[^}]*\} = `)
			}},
		} {
			if b.files == nil {
				continue
			}
			var code string
			for _, f := range b.files {
				code += read(t, b.dir+f)
			}
			for _, k := range doc {
				if m.name == "info" && notRead[k] != "" {
					continue
				}
				if !b.read(k).MatchString(code) {
					t.Errorf("%s: %s%v never reads the header's key %q", m.name, b.dir, b.files, k)
				}
			}
		}
	}
}
