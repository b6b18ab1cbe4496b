package contract

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/quicksand-go/quicksand"
)

// TestOneVersion: VERSION is the one place the version is written. The Go
// packages embed it (quicksand.Version, which qs_version reports) and the
// Makefile and build/dist.sh read it; the files whose format wants the
// number written in them hold a copy, each of which must say the same.
func TestOneVersion(t *testing.T) {
	v := strings.TrimSpace(read(t, "VERSION"))
	m := regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)$`).FindStringSubmatch(v)
	if m == nil {
		t.Fatalf("VERSION says %q, not major.minor.patch", v)
	}
	if quicksand.Version != v {
		t.Errorf("quicksand.Version is %q, VERSION %q", quicksand.Version, v)
	}
	var major, minor, patch int
	fmt.Sscan(m[1]+" "+m[2]+" "+m[3], &major, &minor, &patch)
	want := map[string]string{}
	copyOf := func(file, what, got string) {
		want[file+" "+what] = got
	}

	h := read(t, "include/quicksand.h")
	copyOf("include/quicksand.h", "QS_VERSION", first(h, `(?m)^#define QS_VERSION "([^"]*)"`))
	if n := first(h, `(?m)^#define QS_VERSION_NUMBER (\d+)`); n != fmt.Sprint(major*10000+minor*100+patch) {
		t.Errorf("include/quicksand.h: QS_VERSION_NUMBER is %q, VERSION %s makes %d", n, v, major*10000+minor*100+patch)
	}
	var pkg struct {
		Version string `json:"version"`
	}
	json.Unmarshal([]byte(read(t, "bindings/node/package.json")), &pkg)
	copyOf("bindings/node/package.json", "version", pkg.Version)
	var lock struct {
		Version  string `json:"version"`
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	json.Unmarshal([]byte(read(t, "bindings/node/package-lock.json")), &lock)
	copyOf("bindings/node/package-lock.json", "version", lock.Version)
	copyOf("bindings/node/package-lock.json", `packages[""].version`, lock.Packages[""].Version)
	for _, f := range []string{"bindings/python/pyproject.toml", "build/quicksand-package/pyproject.toml"} {
		copyOf(f, "version", first(read(t, f), `(?m)^version = "([^"]*)"`))
	}
	copyOf("bindings/python/quicksand/__init__.py", "__version__",
		first(read(t, "bindings/python/quicksand/__init__.py"), `(?m)^__version__ = "([^"]*)"`))
	for where, got := range want {
		if got != v {
			t.Errorf("%s is %q, VERSION %q", where, got, v)
		}
	}
}

// first is the first group of re's first match in s ("" for none).
func first(s, re string) string {
	if m := regexp.MustCompile(re).FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return ""
}
