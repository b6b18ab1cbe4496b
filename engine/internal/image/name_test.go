package image

import (
	"strings"
	"testing"
)

func TestNamesAndPaths(t *testing.T) {
	for _, p := range []string{"/abs/x", "./rel", "./a/b"} {
		if !IsPath(p) {
			t.Errorf("%q is a path", p)
		}
	}
	for _, n := range []string{"debian", "debian-arm64", "my_env.2", "A1"} {
		if IsPath(n) || CheckName(n) != nil {
			t.Errorf("%q is a name: %v", n, CheckName(n))
		}
	}
	for _, n := range []string{"", "../../etc/x", "a/b", "..", ".hidden", "-rf", "a b", "a\x00b", "é", strings.Repeat("n", 129)} {
		if IsPath(n) {
			t.Errorf("%q taken for a path", n)
		}
		if CheckName(n) == nil {
			t.Errorf("%q accepted as a name", n)
		}
	}
	huge := strings.Repeat("x/", 5<<20)
	if err := CheckName(huge); err == nil || len(err.Error()) > 300 {
		t.Errorf("a 10 MB name gives a %d-byte message", len(err.Error()))
	}
	if _, err := Resolve(huge, nil); err == nil || len(err.Error()) > 300 {
		t.Errorf("resolving a 10 MB name: a %d-byte message", len(err.Error()))
	}
}
