package contract

import (
	"encoding/hex"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

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
		{"process list", "qs_sandbox_list_processes: an array", "for the processes",
			wire.EncodeProcesses([]engine.ProcessInfo{{}}), []string{"types.py"}, []string{"process.js"}},
		{"mount handle", "handle (may be NULL): msgpack map", "qs_sandbox_unmount takes",
			wire.EncodeMount(engine.MountHandle{}), []string{"types.py"}, []string{"mounts.js"}},
		{"file result", "qs_sandbox_file_op's result", "nothing for",
			concat(wire.EncodeFileResult(&file, nil, false), wire.EncodeFileResult(nil, []engine.FileInfo{file}, true)),
			[]string{"_files.py", "types.py"}, []string{"files.js"}},
		{"image list", "list is a msgpack array of", "qs_image_install:",
			wire.EncodeImages([]engine.ImageEntry{{}}), []string{"_imagecli.py"}, nil},
		{"network stats", "qs_sandbox_network_stats: stats is", "(DNS questions",
			wire.EncodeNetworkStats(engine.NetworkStats{}), []string{"types.py"}, []string{"network.js"}},
		{"sandbox list", " * list: a msgpack array of maps", "qs_sandbox_set_idle_timeout: sets",
			wire.EncodeSandboxList([]engine.SandboxSummary{{Metadata: map[string]string{}}}), []string{"types.py"}, []string{"remote.js"}},
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

// pythonDecodes runs the Python binding's decoders on the maps capi/wire
// makes (msgpack, hex, one a line: "decoder hex") and prints each result's
// repr, one a line.
const pythonDecodes = `
import sys, msgpack
sys.path.insert(0, "bindings/python")
from quicksand.types import BootTiming, ExecuteResult, FileInfo, MountHandle, NetworkStats, ProcessInfo, SandboxSummary
decoders = {"result": ExecuteResult._from_wire, "boot_timing": BootTiming._from_info, "mount": MountHandle._from_wire,
            "network_stats": NetworkStats._from_wire,
            "file": FileInfo._from_wire, "process": ProcessInfo._from_wire, "summary": SandboxSummary._from_wire}
for line in sys.stdin:
    name, raw = line.split()
    m = msgpack.unpackb(bytes.fromhex(raw), raw=False)
    r = decoders[name](m)
    print(repr(r) if name != "result" else repr((r, r.stdout, r.stderr)))
`

// nodeDecodes is the same for the Node binding, each result as JSON.
const nodeDecodes = `
const { decode } = require("./bindings/node/node_modules/@msgpack/msgpack");
const decoders = {
  result: require("./bindings/node/lib/calls.js").toResult,
  boot_timing: require("./bindings/node/lib/sandbox.js").toBootTiming,
  mount: require("./bindings/node/lib/mounts.js").toHandle,
  network_stats: require("./bindings/node/lib/network.js").toStats,
  file: require("./bindings/node/lib/files.js").toInfo,
  process: require("./bindings/node/lib/process.js").toProcessInfo,
  summary: require("./bindings/node/lib/remote.js").toSummary,
};
for (const line of require("fs").readFileSync(0, "utf8").trim().split("\n")) {
  const [name, raw] = line.split(" ");
  const r = decoders[name](decode(Buffer.from(raw, "hex")));
  const shown = name === "result" ? { ...r, stdout: r.stdout, stderr: r.stderr, stdoutBuffer: undefined, stderrBuffer: undefined } : r;
  console.log(JSON.stringify(shown));
}
`

// TestBindingsDecodeTheWire: each binding's decoders read the maps
// capi/wire makes without missing a key they want (Python: a KeyError) and
// keep every value (each is distinct, and must show in what they make: a
// key a binding reads by a wrong name is lost).
func TestBindingsDecodeTheWire(t *testing.T) {
	info, err := msgpack.Marshal(wire.BootTiming{Warm: true, QEMUStarted: 47.41, KernelBooted: 47.42, AgentListening: 47.43, Ready: 47.44})
	if err != nil {
		t.Fatal(err)
	}
	file := engine.FileInfo{Name: "n4731", Type: "t4732", Size: 4733, Mode: 0o755, ModTime: time.Unix(4735, 0), Target: "/t4736"}
	var processes []any
	if err := msgpack.Unmarshal(wire.EncodeProcesses([]engine.ProcessInfo{{ID: "p4751", PID: 4752, Command: "c4753", PTY: true}}), &processes); err != nil {
		t.Fatal(err)
	}
	process, _ := msgpack.Marshal(processes[0])
	var summaries []any
	if err := msgpack.Unmarshal(wire.EncodeSandboxList([]engine.SandboxSummary{{ID: "sb-4761", Metadata: map[string]string{"k4762": "v4763"},
		Image: "i4764", Running: true, Created: time.Unix(4765, 0), IdleTimeout: 4766 * time.Second}}), &summaries); err != nil {
		t.Fatal(err)
	}
	summary, _ := msgpack.Marshal(summaries[0])
	cases := []struct {
		decoder string
		raw     []byte
		values  []string // each must show in what both bindings make
		python  []string // and in Python's repr
		node    []string // and in Node's JSON
	}{
		{"result", wire.EncodeResult(&engine.ExecResult{Stdout: []byte("out-4711"), Stderr: []byte("err-4712"), ExitCode: 4713,
			TimedOut: true, Duration: 4714 * time.Millisecond, StdoutTruncated: true, StderrTruncated: true},
			func(n int) []byte { return make([]byte, n) }),
			[]string{"out-4711", "err-4712", "4713", "4.714"},
			[]string{"timed_out=True", "stdout_truncated=True", "stderr_truncated=True"},
			[]string{`"timedOut":true`, `"stdoutTruncated":true`, `"stderrTruncated":true`, `"duration":4.714`}},
		{"boot_timing", info, []string{"47.41", "47.42", "47.43", "47.44"}, []string{"warm=True"}, []string{`"warm":true`}},
		{"mount", wire.EncodeMount(engine.MountHandle{ID: "m4721", Mount: engine.Mount{HostPath: "/h4722", GuestPath: "/g4723", ReadOnly: true}}),
			[]string{"m4721", "/h4722", "/g4723"}, []string{"readonly=True"}, []string{`"readonly":true`}},
		{"file", fileInfoOf(t, wire.EncodeFileResult(&file, nil, false)), []string{"n4731", "t4732", "4733", "493", "4735", "/t4736"}, nil, nil},
		{"network_stats", wire.EncodeNetworkStats(engine.NetworkStats{Allowed: 4781, Dropped: 4782, NamesAllowed: 4783, NamesRefused: 4784}),
			[]string{"4781", "4782", "4783", "4784"}, nil, nil},
		{"process", process, []string{"p4751", "4752", "c4753"}, []string{"pty=True"}, []string{`"pty":true`}},
		{"summary", summary, []string{"sb-4761", "k4762", "v4763", "i4764", "4765", "4766"}, []string{"running=True"}, []string{`"running":true`}},
	}
	var in strings.Builder
	for _, c := range cases {
		in.WriteString(c.decoder + " " + hex.EncodeToString(c.raw) + "\n")
	}
	for _, b := range []struct {
		who   string
		cmd   []string
		extra func(i int) []string
	}{
		{"Python", []string{python(t), "-c", pythonDecodes}, func(i int) []string { return cases[i].python }},
		{"Node", []string{"node", "-e", nodeDecodes}, func(i int) []string { return cases[i].node }},
	} {
		cmd := exec.Command(b.cmd[0], b.cmd[1:]...)
		cmd.Dir, cmd.Stdin = root, strings.NewReader(in.String())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s: the binding's decoders failed on capi/wire's maps: %v\n%s", b.who, err, out)
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != len(cases) {
			t.Errorf("%s said %q", b.who, out)
			continue
		}
		for i, c := range cases {
			for _, v := range append(slices.Clone(c.values), b.extra(i)...) {
				if !strings.Contains(lines[i], v) {
					t.Errorf("%s: the %s decoder lost %s: %s", b.who, c.decoder, v, lines[i])
				}
			}
		}
	}
}

// fileInfoOf is the info map of a stat's result.
func fileInfoOf(t *testing.T, b []byte) []byte {
	var m map[string]any
	if err := msgpack.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	out, err := msgpack.Marshal(m["info"])
	if err != nil {
		t.Fatal(err)
	}
	return out
}
