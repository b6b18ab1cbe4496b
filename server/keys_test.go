package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeysFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	good := write("good", "# comment\n\n  "+keyA+"  # trailing comment\n"+keyB+"\n", 0o600)
	k, err := loadKeys(good)
	if err != nil {
		t.Fatal(err)
	}
	a, b := k.tenant(keyA), k.tenant(keyB)
	if a == "" || b == "" || a == b || strings.Contains(a, keyA) {
		t.Fatalf("tenants %q and %q", a, b)
	}
	for _, wrong := range []string{"", wrongKey, keyA + "x", keyA[:len(keyA)-1], "# comment"} {
		if got := k.tenant(wrong); got != "" {
			t.Errorf("key %q is tenant %q", wrong, got)
		}
	}
	for _, c := range []struct {
		name, text string
		mode       os.FileMode
		want       string
	}{
		{"group-readable", keyA + "\n", 0o640, "readable or writable by other users"},
		{"world-readable", keyA + "\n", 0o604, "readable or writable by other users"},
		{"short", "short-key\n", 0o600, "at least 16 characters"},
		{"two words", keyA + " " + keyB + "\n", 0o600, "one word"},
		{"empty", "# nothing\n", 0o600, "holds no key"},
	} {
		if _, err := loadKeys(write(c.name, c.text, c.mode)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	// A file another user owns could be theirs to rewrite.
	other := write("other", keyA+"\n", 0o600)
	if err := os.Chown(other, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := loadKeys(other); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
		t.Errorf("a keys file of nobody's: %v", err)
	}
	if _, err := loadKeys(dir); err == nil {
		t.Error("a folder as the keys file was taken")
	}
}

// Clear text only on the loopback: keys must not cross a network unencrypted.
func TestListenRefusesClearTextOffTheLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:7070", "example.com:7070"} {
		if l, err := listen(addr, nil); err == nil || !strings.Contains(err.Error(), "--tls-cert") {
			if l != nil {
				l.Close()
			}
			t.Errorf("%s without TLS: %v", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0", "localhost:0"} {
		l, err := listen(addr, nil)
		if err != nil {
			t.Errorf("%s: %v", addr, err)
			continue
		}
		l.Close()
	}
	if _, err := listen("unix:relative.sock", nil); err == nil {
		t.Error("a relative socket path was taken")
	}
}
