// Package contract checks that the one contract of the C ABI — status
// codes, config and request keys — is the same everywhere it is written:
// include/quicksand.h (the reference), the engine's kinds, the C ABI's
// decoder (capi/wire), and the Python and Node bindings. A code or key
// changed in one place fails this test until the others follow.
package contract

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/quicksand-go/quicksand/capi/wire"
	"github.com/quicksand-go/quicksand/engine"
)

const root = "../.."

func read(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// header is what include/quicksand.h says.
type header struct {
	codes         map[string]int // QS_OK, QS_ERR_* → number
	configKeys    []string
	requestKeys   []string
	codeKeys      []string // qs_sandbox_run_code's request
	remoteKeys    []string // qs_sandbox_connect's and qs_sandbox_list's options
	resultKeys    []string
	streams, logs map[string]int
}

func parseHeader(t *testing.T) header {
	h := header{codes: map[string]int{}, streams: map[string]int{}, logs: map[string]int{}}
	src := read(t, "include/quicksand.h")
	// Codes are enumerators ("  QS_X = N,"), the rest #defines.
	for _, m := range regexp.MustCompile(`(?m)^(?:#define (QS_\w+)\s+\(?|\s+(QS_\w+)\s+=\s*)(-?\d+)`).FindAllStringSubmatch(src, -1) {
		n, _ := strconv.Atoi(m[3])
		name := m[1] + m[2]
		switch {
		case name == "QS_OK" || strings.HasPrefix(name, "QS_ERR_"):
			h.codes[name] = n
		case strings.HasPrefix(name, "QS_LOG_"):
			h.logs[name] = n
		case name == "QS_STDOUT" || name == "QS_STDERR":
			h.streams[name] = n
		}
	}
	// The documented keys: " *   key   type ..." lines inside a block.
	block := func(from, to string) []string {
		i := strings.Index(src, from)
		j := strings.Index(src[i:], to)
		if i < 0 || j < 0 {
			t.Fatalf("the header has no block from %q to %q", from, to)
		}
		var keys []string
		for _, m := range regexp.MustCompile(`(?m)^ \*   ([a-z_]+) `).FindAllStringSubmatch(src[i:i+j], -1) {
			keys = append(keys, m[1])
		}
		sort.Strings(keys)
		return keys
	}
	h.configKeys = block("config: msgpack map", "image may also")
	h.requestKeys = block("request: msgpack map", "on_chunk:")
	h.codeKeys = block("qs_sandbox_run_code's request: msgpack map", " * on_event")
	h.remoteKeys = block("msgpack map, every key optional:\n *   server", " * list: ")
	res := src[strings.Index(src, "result (required)"):]
	res = res[:strings.Index(res, "A command that fails")]
	for _, m := range regexp.MustCompile(`([a-z_]+) (?:bin|int|bool|float)\b`).FindAllStringSubmatch(res, -1) {
		h.resultKeys = append(h.resultKeys, m[1])
	}
	sort.Strings(h.resultKeys)
	return h
}

// goKinds are engine/errors.go's Kind constants by number.
func goKinds(t *testing.T) map[int]string {
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(root, "engine/errors.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[int]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			v := s.(*ast.ValueSpec)
			if id, ok := v.Type.(*ast.Ident); !ok || id.Name != "Kind" || len(v.Values) != 1 {
				continue
			}
			if lit, ok := v.Values[0].(*ast.BasicLit); ok {
				n, _ := strconv.Atoi(lit.Value)
				kinds[n] = v.Names[0].Name
			}
		}
	}
	return kinds
}

// binding is what a binding says of the contract, from its own code.
type binding struct {
	Codes       map[string]int `json:"codes"` // C name → number
	ConfigKeys  []string       `json:"config_keys"`
	RequestKeys []string       `json:"request_keys"`
}

// say runs a program in the repository's root and returns its output.
func say(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s: %v\n%s", name, err, stderr)
	}
	return out
}

func run(t *testing.T, name string, args ...string) binding {
	t.Helper()
	out := say(t, name, args...)
	var b binding
	if err := json.Unmarshal(out, &b); err != nil {
		t.Fatalf("%s said %q: %v", name, out, err)
	}
	sort.Strings(b.ConfigKeys)
	sort.Strings(b.RequestKeys)
	return b
}

func python(t *testing.T) string {
	if py := os.Getenv("QUICKSAND_PYTHON"); py != "" {
		return py
	}
	py, _ := filepath.Abs(filepath.Join(root, "out/venv/bin/python"))
	if _, err := os.Stat(py); err != nil {
		t.Fatalf("the project venv is missing (%v): run `make deps`", err)
	}
	return py
}

// pythonSays asks the Python binding: its error classes, and the keys of a
// config and a request with every option given.
const pythonSays = `
import inspect, json, sys, msgpack
sys.path.insert(0, "bindings/python")
from quicksand import errors, _wire as _core
from quicksand.types import NetworkPolicy
codes = {c.code: c.status for c in vars(errors).values()
         if isinstance(c, type) and issubclass(c, errors.QuicksandError) and c.status > 0}
def every(fn, **special):
    return {p: special.get(p, "x") for p in inspect.signature(fn).parameters}
cfg = msgpack.unpackb(_core.encode_config(**every(_core.encode_config,
    port_forwards=[(1, 2)], extra_qemu_args=["a"], extra_kernel_args=["a"], mounts=[("/h", "/g")], metadata={"a": "b"},
    network_policy=NetworkPolicy(allow_out=["a"]), display=True, enable_display=True)))
req = msgpack.unpackb(_core.encode_request(**every(_core.encode_request, env={"A": "b"})), raw=False)
print(json.dumps({"codes": codes, "config_keys": list(cfg), "request_keys": list(req)}))
`

// nodeSays asks the Node binding the same.
const nodeSays = `
const errors = require("./bindings/node/lib/errors.js");
const { encodeConfig, encodeRequest, CONFIG_KEYS, EXECUTE_KEYS } = require("./bindings/node/lib/options.js");
const { decode } = require("./bindings/node/node_modules/@msgpack/msgpack");
const codes = {};
for (const cls of Object.values(errors)) {
  if (typeof cls === "function" && cls.status > 0) codes[cls.code] = cls.status;
}
const special = { portForwards: [{ host: 1, guest: 2 }], extraQemuArgs: ["a"], extraKernelArgs: ["a"], env: { A: "b" }, timeout: 1, maxOutput: 1, metadata: { a: "b" }, networkPolicy: { allowOut: ["a"] }, display: true };
const options = (keys) => Object.fromEntries(keys.filter((k) => !["onStdout", "onStderr", "signal"].includes(k)).map((k) => [k, special[k] ?? "x"]));
const cfg = decode(encodeConfig(options(Object.keys(CONFIG_KEYS))));
const req = decode(encodeRequest("true", options(EXECUTE_KEYS)));
console.log(JSON.stringify({ codes, config_keys: Object.keys(cfg), request_keys: Object.keys(req) }));
`

func TestOneContract(t *testing.T) {
	h := parseHeader(t)
	errCodes := map[string]int{}
	for name, n := range h.codes {
		if name != "QS_OK" {
			errCodes[name] = n
		}
	}
	if len(errCodes) == 0 || len(h.configKeys) == 0 || len(h.requestKeys) == 0 || len(h.resultKeys) == 0 {
		t.Fatalf("the header parsed to nothing: %+v", h)
	}

	if h.streams["QS_STDOUT"] != int(engine.Stdout) || h.streams["QS_STDERR"] != int(engine.Stderr) {
		t.Errorf("streams: header %v, engine %d/%d", h.streams, engine.Stdout, engine.Stderr)
	}
	for name, want := range map[string]slog.Level{"QS_LOG_DEBUG": slog.LevelDebug, "QS_LOG_INFO": slog.LevelInfo, "QS_LOG_WARN": slog.LevelWarn, "QS_LOG_ERROR": slog.LevelError} {
		if n, ok := h.logs[name]; !ok || n != int(want) {
			t.Errorf("header %s = %d, slog's level is %d", name, n, want)
		}
	}

	// The engine's kinds are the header's codes, but for the C ABI's own.
	kinds := goKinds(t)
	cOnly := map[string]bool{"QS_ERR_INVALID_HANDLE": true, "QS_ERR_INTERNAL": true}
	for name, n := range errCodes {
		if k, ok := kinds[n]; ok == cOnly[name] {
			t.Errorf("header %s = %d: engine kind %q (the C ABI's own codes have none, every other has one)", name, n, k)
		}
	}
	for n, k := range kinds {
		if !slices.Contains(mapValues(errCodes), n) {
			t.Errorf("engine %s = %d: not a code in the header", k, n)
		}
	}

	// The decoder reads exactly the documented keys.
	if got := wire.ConfigKeys(); !slices.Equal(got, h.configKeys) {
		t.Errorf("config keys: header %v, capi/wire %v", h.configKeys, got)
	}
	if got := wire.RequestKeys(); !slices.Equal(got, h.requestKeys) {
		t.Errorf("request keys: header %v, capi/wire %v", h.requestKeys, got)
	}
	if got := wire.CodeRequestKeys(); len(h.codeKeys) == 0 || !slices.Equal(got, h.codeKeys) {
		t.Errorf("qs_sandbox_run_code request keys: header %v, capi/wire %v", h.codeKeys, got)
	}

	// connect takes the remote options but the list's filter.
	if got := wire.ListKeys(); !slices.Equal(got, h.remoteKeys) {
		t.Errorf("qs_sandbox_list option keys: header %v, capi/wire %v", h.remoteKeys, got)
	}
	wantConnect := slices.DeleteFunc(slices.Clone(h.remoteKeys), func(k string) bool { return k == "metadata" })
	if got := wire.ConnectKeys(); len(wantConnect) == 0 || !slices.Equal(got, wantConnect) {
		t.Errorf("qs_sandbox_connect option keys: header %v (but metadata), capi/wire %v", wantConnect, got)
	}

	var result map[string]any
	raw := wire.EncodeResult(&engine.ExecResult{}, func(n int) []byte { return make([]byte, n) })
	if err := msgpack.Unmarshal(raw, &result); err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(result)); !slices.Equal(got, h.resultKeys) {
		t.Errorf("result keys: header %v, capi/wire %v", h.resultKeys, got)
	}

	for _, b := range []struct {
		name string
		says binding
	}{
		{"Python", run(t, python(t), "-c", pythonSays)},
		{"Node", run(t, "node", "-e", nodeSays)},
	} {
		for name, n := range errCodes {
			if b.says.Codes[name] != n {
				t.Errorf("%s: %s is %d, header %d", b.name, name, b.says.Codes[name], n)
			}
		}
		for name := range b.says.Codes {
			if _, ok := errCodes[name]; !ok {
				t.Errorf("%s: error code %s is not in the header", b.name, name)
			}
		}
		if !slices.Equal(b.says.ConfigKeys, h.configKeys) {
			t.Errorf("%s config keys %v, header %v", b.name, b.says.ConfigKeys, h.configKeys)
		}
		if !slices.Equal(b.says.RequestKeys, h.requestKeys) {
			t.Errorf("%s request keys %v, header %v", b.name, b.says.RequestKeys, h.requestKeys)
		}
	}
}

func mapValues(m map[string]int) []int {
	var v []int
	for _, n := range m {
		v = append(v, n)
	}
	return v
}
