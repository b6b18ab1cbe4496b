package contract

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"path/filepath"
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
	case "qs_status":
		// An enum passed as an int, its own kind so that a binding
		// declares each status function as returning one.
		return "status", nil
	case "size_t":
		return "size_t", nil
	case "double":
		return "double", nil
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
	case "int*":
		return "int_out", nil
	case "qs_chunk_fn", "qs_done_fn", "qs_log_fn", "qs_progress_fn", "qs_event_fn":
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
	if len(funcs) < 40 || len(callbacks) != 5 {
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
fns = {_lib.ChunkFn: "qs_chunk_fn", _lib.DoneFn: "qs_done_fn", _lib.LogFn: "qs_log_fn", _imagecli.ProgressFn: "qs_progress_fn", _lib.EventFn: "qs_event_fn"}
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
	"c_int":       {"int", "status"},
	"c_double":    {"double"},
	"c_ulong":     {"size_t", "uint64"},
	"None":        {"void"},
	"c_char_p":    {"str", "bytes"},
	"c_void_p":    {"handle", "userdata"},
	"LP_c_void_p": {"handle_out"},
	"LP_Buffer":   {"buffer_out"},
	"LP_c_ulong":  {"uint64_out"},
	"LP_c_int":    {"int_out"},
	"LP_c_ubyte":  {"bytes"},
}

// nodeABI dumps native.js's and imagecli.js's declarations: ffi-napi type
// names, the two pointer types by name.
const nodeABI = `
const n = require("./bindings/node/lib/native.js");
const images = require("./bindings/node/lib/imagecli.js");
const name = (t) => t === n.voidPtr ? "pointer" : t === n.voidPtrPtr ? "pointer*" : typeof t === "string" ? t : "unknown " + String(t && t.name);
const sig = ([ret, args]) => ({ ret: name(ret), args: args.map(name) });
console.log(JSON.stringify({
  functions: Object.fromEntries(Object.entries({ ...n.signatures, ...images.signatures }).map(([k, v]) => [k, sig(v)])),
  callbacks: { qs_chunk_fn: sig(n.chunkFnType), qs_done_fn: sig(n.doneFnType), qs_event_fn: sig(n.eventFnType) },
}));
`

// nodeKinds: ffi-napi's pointer is untyped (it is given Buffers, callbacks
// and handles alike); user_data crosses as a pointer-sized integer key.
var nodeKinds = map[string][]string{
	"int":      {"int", "status"},
	"size_t":   {"size_t"},
	"double":   {"double"},
	"uint64":   {"uint64", "userdata"},
	"void":     {"void"},
	"string":   {"str"},
	"pointer":  {"handle", "bytes", "userdata", "buffer_out", "uint64_out", "int_out", "fn:qs_chunk_fn", "fn:qs_done_fn", "fn:qs_log_fn", "fn:qs_progress_fn", "fn:qs_event_fn"},
	"pointer*": {"handle_out"},
}

// abiProblems compares one binding's declarations with the header's.
func abiProblems(who string, b bindingABI, kinds map[string][]string, funcs, callbacks map[string]cFunc) []string {
	var problems []string
	errorf := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	fits := func(what, got, want string) {
		if want == "str" && what == "returns" && got == "c_char_p" {
			return
		}
		if !slices.Contains(kinds[got], want) && got != want {
			errorf("%s: %s %s, the header %s", who, what, got, want)
		}
	}
	compare := func(kind, name string, ret string, args []string, c cFunc) {
		fits(name+" returns", ret, c.Ret)
		if len(args) != len(c.Args) {
			errorf("%s: %s %s takes %d arguments, the header %d (%v)", who, kind, name, len(args), len(c.Args), c.Args)
			return
		}
		for i, a := range args {
			fits(fmt.Sprintf("%s argument %d is", name, i+1), a, c.Args[i])
		}
	}
	if len(b.Functions) == 0 {
		return []string{who + " declared nothing"}
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
			errorf("%s declares %s, which the header does not", who, name)
			continue
		}
		compare("function", name, f.Ret, f.Args, c)
	}
	for name, f := range b.Callbacks {
		c, ok := callbacks[name]
		if !ok {
			errorf("%s has callback type %s, which the header does not", who, name)
			continue
		}
		compare("callback", name, f.Ret, f.Args, c)
	}
	return problems
}

func TestBindingsDeclareTheHeader(t *testing.T) {
	funcs, callbacks := headerABI(t)
	// The parser read what is there: a few prototypes spelled out.
	for name, want := range map[string]cFunc{
		"qs_version":        {"str", nil},
		"qs_version_number": {"int", nil},
		"qs_sandbox_start":  {"status", []string{"bytes", "size_t", "handle_out", "handle_out"}},
		"qs_process_attach_async": {"status", []string{"handle", "str", "fn:qs_chunk_fn", "fn:qs_done_fn", "userdata",
			"uint64_out", "handle_out"}},
		"qs_error_code":   {"status", []string{"handle"}},
		"qs_sandbox_free": {"void", []string{"handle"}},
	} {
		if got := funcs[name]; got.Ret != want.Ret || !slices.Equal(got.Args, want.Args) {
			t.Errorf("the header parsed %s as %+v, not %+v", name, got, want)
		}
	}
	if got := callbacks["qs_done_fn"]; !slices.Equal(got.Args, []string{"userdata", "status", "bytes", "size_t", "handle"}) {
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
		for _, p := range abiProblems(b.who, abi, b.kinds, funcs, callbacks) {
			t.Error(p)
		}
	}
}

// TestStatusFunctionsReturnAnInt: a binding that declares a function
// returning qs_status as anything but its int (a wider, unsigned or void
// return reads garbage or drops the error) fails the check above; its int
// passes.
func TestStatusFunctionsReturnAnInt(t *testing.T) {
	funcs, callbacks := headerABI(t)
	declare := func(ret string) bindingABI {
		var b bindingABI
		json.Unmarshal([]byte(`{"functions": {"qs_sandbox_stop": {"ret": "`+ret+`", "args": ["c_void_p", "LP_c_void_p"]}}}`), &b)
		return b
	}
	if p := abiProblems("ctypes", declare("c_int"), pythonKinds, funcs, callbacks); len(p) > 0 {
		t.Errorf("c_int for qs_status: %v", p)
	}
	for _, ret := range []string{"c_long", "c_uint", "c_ulong", "None", "c_void_p", "c_char_p"} {
		if p := abiProblems("ctypes", declare(ret), pythonKinds, funcs, callbacks); len(p) != 1 || !strings.Contains(p[0], "the header status") {
			t.Errorf("qs_sandbox_stop declared to return %s: %v, want one complaint", ret, p)
		}
	}
	// Every function that reports success or failure says so in its type:
	// an int return is qs_version_number's alone.
	for name, f := range funcs {
		if f.Ret == "int" && name != "qs_version_number" {
			t.Errorf("%s returns int: a status is a qs_status", name)
		}
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

// TestExportsAreTheHeader: the library's Go exports (capi, whose build
// does not see the header's prototypes: cgo writes its own) are the
// header's functions, each with its number of arguments and its return
// type; a status is a C.qs_status, never a bare C.int.
func TestExportsAreTheHeader(t *testing.T) {
	funcs, _ := headerABI(t)
	goKinds := map[string]string{"C.qs_status": "status", "C.int": "int", "": "void", "*C.char": "str"}
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, filepath.Join(root, "capi"), nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, f := range pkgs["main"].Files {
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Doc == nil || !hasExportDirective(fn) {
				continue
			}
			name := fn.Name.Name
			exported[name] = true
			c, ok := funcs[name]
			if !ok {
				t.Errorf("capi exports %s, which the header does not declare", name)
				continue
			}
			ret := ""
			if fn.Type.Results != nil {
				ret = types(fset, fn.Type.Results.List[0].Type)
			}
			if goKinds[ret] != c.Ret {
				t.Errorf("capi's %s returns %q, the header %s", name, ret, c.Ret)
			}
			if n := fieldCount(fn.Type.Params); n != len(c.Args) {
				t.Errorf("capi's %s takes %d arguments, the header %d", name, n, len(c.Args))
			}
		}
	}
	for name := range funcs {
		if !exported[name] {
			t.Errorf("the header declares %s, which capi does not export", name)
		}
	}
}

// hasExportDirective: fn's comment has a "//export name" line (go/ast's
// Text drops directives, so the raw comments are read).
func hasExportDirective(fn *ast.FuncDecl) bool {
	for _, c := range fn.Doc.List {
		if c.Text == "//export "+fn.Name.Name {
			return true
		}
	}
	return false
}

// types prints a type expression as written ("C.qs_status", "*C.char").
func types(fset *token.FileSet, e ast.Expr) string {
	var b strings.Builder
	printer.Fprint(&b, fset, e)
	return b.String()
}

// fieldCount counts parameters ("a, b C.int" is two).
func fieldCount(l *ast.FieldList) int {
	n := 0
	for _, f := range l.List {
		n += max(len(f.Names), 1)
	}
	return n
}
