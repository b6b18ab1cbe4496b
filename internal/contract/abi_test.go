package contract

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The C ABI's functions and callbacks as include/quicksand.h declares them,
// and as the bindings restate them for their foreign-function interfaces
// (Python's ctypes in _lib.py and _imagecli.py, Node's ffi-napi in
// native.js): a binding that passes a wrong type corrupts memory silently,
// so every function a binding declares must have the header's name, number
// of arguments, and argument and return types, and so must every callback
// type. A header change fails this test until each binding follows.

// cFunc is a prototype: each type is a kind (cKind).
type cFunc struct {
	Ret  string
	Args []string
}

// cKind names what a C type is for the ABI: two types of one kind are
// passed alike. The header's style is regular (one type per parameter, a
// name after it, `const` only before it), and a type not listed here fails
// the test rather than pass unchecked.
func cKind(typ string) (string, error) {
	t := strings.TrimSpace(strings.ReplaceAll(typ, "const ", ""))
	t = strings.Join(strings.Fields(strings.ReplaceAll(t, "*", " * ")), " ")
	t = strings.ReplaceAll(t, " *", "*")
	switch t {
	case "int", "void":
		return t, nil
	case "size_t":
		return "size_t", nil
	case "uint64_t":
		return "uint64", nil
	case "char*":
		return "str", nil
	case "uint8_t*":
		return "bytes", nil
	case "void*":
		return "userdata", nil
	case "qs_sandbox*", "qs_pool*", "qs_error*":
		return "handle", nil
	case "qs_sandbox**", "qs_pool**", "qs_error**":
		return "handle_out", nil
	case "qs_buffer*":
		return "buffer_out", nil
	case "uint64_t*":
		return "uint64_out", nil
	case "qs_chunk_fn", "qs_done_fn", "qs_log_fn", "qs_progress_fn":
		return "fn:" + t, nil
	}
	return "", fmt.Errorf("the C type %q has no kind here: add it to cKind", typ)
}

// params turns "const uint8_t *config, size_t config_len" into kinds.
func params(list string) ([]string, error) {
	list = strings.TrimSpace(list)
	if list == "void" || list == "" {
		return nil, nil
	}
	var kinds []string
	for _, p := range strings.Split(list, ",") {
		// The last word is the parameter's name; the header names them all.
		m := regexp.MustCompile(`^(.*?)\b([a-z_][a-z0-9_]*)\s*$`).FindStringSubmatch(strings.TrimSpace(p))
		if m == nil || strings.TrimSpace(m[1]) == "" {
			return nil, fmt.Errorf("parameter %q has no type and name", p)
		}
		k, err := cKind(m[1])
		if err != nil {
			return nil, err
		}
		kinds = append(kinds, k)
	}
	return kinds, nil
}

// headerABI parses the header's prototypes and callback typedefs.
func headerABI(t *testing.T) (funcs, callbacks map[string]cFunc) {
	funcs, callbacks = map[string]cFunc{}, map[string]cFunc{}
	typedef := regexp.MustCompile(`^typedef ([a-z_0-9 ]+?) ?\( ?\* ?(qs_\w+) ?\) ?\(([^()]*)\)$`)
	proto := regexp.MustCompile(`^((?:const )?[a-z_0-9]+ ?\*?) ?\b(qs_\w+) ?\(([^()]*)\)$`)
	for _, stmt := range statements(read(t, "include/quicksand.h")) {
		into, m := callbacks, typedef.FindStringSubmatch(stmt)
		if m == nil {
			into, m = funcs, proto.FindStringSubmatch(stmt)
		}
		if m == nil {
			continue
		}
		ret, err := cKind(m[1])
		args, err2 := params(m[3])
		if err != nil || err2 != nil {
			t.Fatalf("include/quicksand.h, %s: %v %v", m[2], err, err2)
		}
		into[m[2]] = cFunc{ret, args}
	}
	if len(funcs) < 40 || len(callbacks) != 4 {
		t.Fatalf("the header parsed to %d functions and %d callback types: the parser no longer fits its style", len(funcs), len(callbacks))
	}
	return funcs, callbacks
}

// statements splits C source into its statements, comments and
// preprocessor lines removed, each on one line, from its last brace on.
func statements(src string) []string {
	src = regexp.MustCompile(`(?s)/\*.*?\*/`).ReplaceAllString(src, " ")
	src = regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(src, " ")
	var out []string
	for _, s := range strings.Split(src, ";") {
		if i := strings.LastIndexAny(s, "{}"); i >= 0 {
			s = s[i+1:]
		}
		out = append(out, strings.Join(strings.Fields(s), " "))
	}
	return out
}

// bindingABI is what a binding declares, in its own type names.
type bindingABI struct {
	Functions map[string]struct {
		Ret  string   `json:"ret"`
		Args []string `json:"args"`
	} `json:"functions"`
	Callbacks map[string]struct {
		Ret  string   `json:"ret"`
		Args []string `json:"args"`
	} `json:"callbacks"`
}

// pythonABI dumps _lib.py's and _imagecli.py's declarations: ctypes type
// names, and the callback types by the header's name.
const pythonABI = `
import ctypes, json, sys
sys.path.insert(0, "bindings/python")
from quicksand import _lib, _imagecli
fns = {_lib.ChunkFn: "qs_chunk_fn", _lib.DoneFn: "qs_done_fn", _lib.LogFn: "qs_log_fn", _imagecli.ProgressFn: "qs_progress_fn"}
def name(t):
    if t is None:
        return "None"
    if t in fns:
        return "fn:" + fns[t]
    return t.__name__
def sig(ret, args):
    return {"ret": name(ret), "args": [name(a) for a in args]}
funcs = {**_lib.signatures(), **_imagecli.signatures()}
print(json.dumps({
    "functions": {n: sig(r, a) for n, (r, a) in funcs.items()},
    "callbacks": {c: sig(f._restype_, f._argtypes_) for f, c in fns.items()},
}))
`

// pythonKinds: what each ctypes type may stand for. c_size_t and c_uint64
// are both c_ulong on the 64-bit platforms built for, and c_char_p carries
// bytes as well as text.
var pythonKinds = map[string][]string{
	"c_int":       {"int"},
	"c_ulong":     {"size_t", "uint64"},
	"None":        {"void"},
	"c_char_p":    {"str", "bytes"},
	"c_void_p":    {"handle", "userdata"},
	"LP_c_void_p": {"handle_out"},
	"LP_Buffer":   {"buffer_out"},
	"LP_c_ulong":  {"uint64_out"},
	"LP_c_ubyte":  {"bytes"},
}

// nodeABI dumps native.js's declarations: ffi-napi type names, the two
// pointer types by name.
const nodeABI = `
const n = require("./bindings/node/lib/native.js");
const name = (t) => t === n.voidPtr ? "pointer" : t === n.voidPtrPtr ? "pointer*" : typeof t === "string" ? t : "unknown " + String(t && t.name);
const sig = ([ret, args]) => ({ ret: name(ret), args: args.map(name) });
console.log(JSON.stringify({
  functions: Object.fromEntries(Object.entries(n.signatures).map(([k, v]) => [k, sig(v)])),
  callbacks: { qs_chunk_fn: sig(n.chunkFnType), qs_done_fn: sig(n.doneFnType) },
}));
`

// nodeKinds: ffi-napi's pointer is untyped (it is given Buffers, callbacks
// and handles alike); user_data crosses as a pointer-sized integer key.
var nodeKinds = map[string][]string{
	"int":      {"int"},
	"size_t":   {"size_t"},
	"uint64":   {"uint64", "userdata"},
	"void":     {"void"},
	"string":   {"str"},
	"pointer":  {"handle", "bytes", "userdata", "buffer_out", "uint64_out", "fn:qs_chunk_fn", "fn:qs_done_fn", "fn:qs_log_fn", "fn:qs_progress_fn"},
	"pointer*": {"handle_out"},
}

// checkABI compares one binding's declarations with the header's.
func checkABI(t *testing.T, who string, b bindingABI, kinds map[string][]string, funcs, callbacks map[string]cFunc) {
	fits := func(what, got, want string) {
		if want == "str" && what == "returns" && got == "c_char_p" {
			return
		}
		if !slices.Contains(kinds[got], want) && got != want {
			t.Errorf("%s: %s %s, the header %s", who, what, got, want)
		}
	}
	compare := func(kind, name string, ret string, args []string, c cFunc) {
		fits(name+" returns", ret, c.Ret)
		if len(args) != len(c.Args) {
			t.Errorf("%s: %s %s takes %d arguments, the header %d (%v)", who, kind, name, len(args), len(c.Args), c.Args)
			return
		}
		for i, a := range args {
			fits(fmt.Sprintf("%s argument %d is", name, i+1), a, c.Args[i])
		}
	}
	if len(b.Functions) == 0 {
		t.Fatalf("%s declared nothing", who)
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range b.Functions {
			if !yield(n) {
				return
			}
		}
	})
	for _, name := range names {
		f := b.Functions[name]
		c, ok := funcs[name]
		if !ok {
			t.Errorf("%s declares %s, which the header does not", who, name)
			continue
		}
		compare("function", name, f.Ret, f.Args, c)
	}
	for name, f := range b.Callbacks {
		c, ok := callbacks[name]
		if !ok {
			t.Errorf("%s has callback type %s, which the header does not", who, name)
			continue
		}
		compare("callback", name, f.Ret, f.Args, c)
	}
}

func TestBindingsDeclareTheHeader(t *testing.T) {
	funcs, callbacks := headerABI(t)
	// The parser read what is there: a few prototypes spelled out.
	for name, want := range map[string]cFunc{
		"qs_version":       {"str", nil},
		"qs_sandbox_start": {"int", []string{"bytes", "size_t", "handle_out", "handle_out"}},
		"qs_process_attach_async": {"int", []string{"handle", "str", "fn:qs_chunk_fn", "fn:qs_done_fn", "userdata",
			"uint64_out", "handle_out"}},
		"qs_sandbox_free": {"void", []string{"handle"}},
	} {
		if got := funcs[name]; got.Ret != want.Ret || !slices.Equal(got.Args, want.Args) {
			t.Errorf("the header parsed %s as %+v, not %+v", name, got, want)
		}
	}
	if got := callbacks["qs_done_fn"]; !slices.Equal(got.Args, []string{"userdata", "int", "bytes", "size_t", "handle"}) {
		t.Errorf("the header parsed qs_done_fn as %+v", got)
	}

	for _, b := range []struct {
		who   string
		cmd   []string
		kinds map[string][]string
	}{
		{"Python (_lib.py, _imagecli.py)", []string{python(t), "-c", pythonABI}, pythonKinds},
		{"Node (native.js)", []string{"node", "-e", nodeABI}, nodeKinds},
	} {
		var abi bindingABI
		if err := json.Unmarshal(say(t, b.cmd[0], b.cmd[1:]...), &abi); err != nil {
			t.Fatalf("%s: %v", b.who, err)
		}
		checkABI(t, b.who, abi, b.kinds, funcs, callbacks)
	}
}

// TestHeaderParserFindsEveryPrototype: every "qs_...(" the header declares
// at the start of a statement is one the parser read (a prototype in a new
// style would otherwise go unchecked).
func TestHeaderParserFindsEveryPrototype(t *testing.T) {
	funcs, _ := headerABI(t)
	var missed []string
	for _, stmt := range statements(read(t, "include/quicksand.h")) {
		m := regexp.MustCompile(`^[^(]*\b(qs_[a-z_0-9]+) ?\(`).FindStringSubmatch(stmt)
		if m == nil || strings.HasPrefix(stmt, "typedef") {
			continue
		}
		if _, ok := funcs[m[1]]; !ok {
			missed = append(missed, m[1])
		}
	}
	sort.Strings(missed)
	if len(missed) > 0 {
		t.Errorf("prototypes the parser did not read: %v", missed)
	}
}
