package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Random bytes of every awkward size go in and come back the same.
func TestFileRoundTrips(t *testing.T) {
	sb := sharedSandbox(t)
	ctx := context.Background()
	for _, size := range []int{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 100 << 20} {
		data := make([]byte, size)
		rand.Read(data)
		path := "/tmp/roundtrip"
		n, err := sb.WriteFile(ctx, path, bytes.NewReader(data), FileOptions{Mode: 0o600})
		if err != nil || n != int64(size) {
			t.Fatalf("write %d bytes: %d, %v", size, n, err)
		}
		var back bytes.Buffer
		if n, err := sb.ReadFile(ctx, path, &back, FileOptions{}); err != nil || n != int64(size) || !bytes.Equal(back.Bytes(), data) {
			t.Fatalf("read %d bytes: %d, %v, equal %v", size, n, err, bytes.Equal(back.Bytes(), data))
		}
		if fi, err := sb.Stat(ctx, path, FileOptions{}); err != nil || fi.Size != int64(size) || fi.Mode != 0o600 || fi.Type != "file" {
			t.Fatalf("stat after %d bytes: %+v, %v", size, fi, err)
		}
	}
	sb.Remove(ctx, "/tmp/roundtrip", FileOptions{})
}

// The small operations, and a file written as a user belongs to it.
func TestFileOperations(t *testing.T) {
	sb := sharedSandbox(t)
	ctx := context.Background()
	base := "/tmp/ops-" + strings.ReplaceAll(t.Name(), "/", "-")
	if err := sb.MakeDir(ctx, base+"/a/b", FileOptions{Parents: true}); err != nil {
		t.Fatal(err)
	}
	defer sb.Remove(ctx, base, FileOptions{Recursive: true})
	if _, err := sb.WriteFile(ctx, base+"/a/f", strings.NewReader("hi"), FileOptions{}); err != nil {
		t.Fatal(err)
	}
	entries, err := sb.ListDir(ctx, base+"/a", FileOptions{})
	if err != nil || len(entries) != 2 {
		t.Fatalf("list: %+v %v", entries, err)
	}
	if ok, err := sb.Exists(ctx, base+"/a/f", FileOptions{}); !ok || err != nil {
		t.Fatalf("exists: %v %v", ok, err)
	}
	if err := sb.Rename(ctx, base+"/a/f", base+"/g", FileOptions{}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := sb.Exists(ctx, base+"/a/f", FileOptions{}); ok {
		t.Fatal("the renamed file is still there")
	}
	if err := sb.Remove(ctx, base+"/a", FileOptions{}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("removing a folder that is not empty without recursive: %v", err)
	}
	if _, err := sb.WriteFile(ctx, "/tmp/owned", strings.NewReader("x"), FileOptions{User: "nobody", Mode: 0o640}); err != nil {
		t.Fatal(err)
	}
	if r := run(t, sb, ExecRequest{Command: "stat -c '%U %a' /tmp/owned; rm /tmp/owned"}); string(r.Stdout) != "nobody 640\n" {
		t.Fatalf("a file written as nobody: %q", r.Stdout)
	}
}

// Bad input: a clear error of the right kind that names the path, and
// nothing left half-done.
func TestFileErrors(t *testing.T) {
	sb := sharedSandbox(t)
	ctx := context.Background()
	write := func(path string, opts FileOptions) error {
		_, err := sb.WriteFile(ctx, path, strings.NewReader("data"), opts)
		return err
	}
	for _, c := range []struct {
		name string
		err  error
		want error
		says string
	}{
		{"relative path", write("tmp/x", FileOptions{}), ErrBadRequest, "not absolute"},
		{"NUL in the path", write("/tmp/a\x00b", FileOptions{}), ErrBadRequest, "NUL"},
		{"missing parent", write("/no/such/dir/x", FileOptions{}), ErrNotFound, "/no/such/dir/x"},
		{"a folder as a file", write("/tmp", FileOptions{}), ErrBadRequest, "/tmp is a folder"},
		{"permission denied", write("/root/x", FileOptions{User: "nobody"}), ErrPermission, "/root/x"},
		{"unknown user", write("/tmp/x", FileOptions{User: "no-such-user"}), ErrBadRequest, "no-such-user"},
		{"reading what is not there", func() error { _, err := sb.ReadFile(ctx, "/no/file", &bytes.Buffer{}, FileOptions{}); return err }(), ErrNotFound, "/no/file"},
		{"stat of what is not there", func() error { _, err := sb.Stat(ctx, "/no/file", FileOptions{}); return err }(), ErrNotFound, "/no/file"},
		{"upload of a missing host path", sb.Upload(ctx, "/no/such/host/path", "/tmp/up", FileOptions{}), ErrNotFound, "/no/such/host/path"},
		{"download to a missing host folder", sb.Download(ctx, "/etc/hostname", "/no/such/host/dir/x", FileOptions{}), ErrNotFound, "/no/such/host/dir"},
	} {
		if !errors.Is(c.err, c.want) || !strings.Contains(c.err.Error(), c.says) {
			t.Errorf("%s: %v, want %v naming %q", c.name, c.err, c.want, c.says)
		}
	}
	if r := run(t, sb, ExecRequest{Command: "ls -a /tmp /root | grep quicksand || true"}); len(r.Stdout) > 0 {
		t.Errorf("temporary files left: %s", r.Stdout)
	}
}

// A write that does not fit on the guest's disk fails as out of resources
// and leaves no file, not even a partial one.
func TestFileWriteFillsTheDisk(t *testing.T) {
	sb := startSandbox(t, Config{})
	ctx := context.Background()
	run(t, sb, ExecRequest{Command: `fallocate -l $(( $(stat -f -c '%f' /) * $(stat -f -c '%S' /) - 8388608 )) /fill`})
	_, err := sb.WriteFile(ctx, "/root/big", bytes.NewReader(make([]byte, 32<<20)), FileOptions{})
	if !errors.Is(err, ErrResource) || !strings.Contains(err.Error(), "/root/big") {
		t.Fatalf("a write past the disk's end: %v", err)
	}
	if r := run(t, sb, ExecRequest{Command: "ls -a /root"}); strings.Contains(string(r.Stdout), "big") {
		t.Fatalf("left behind: %s", r.Stdout)
	}
}

// A tree goes up and comes back with its modes, symlinks, empty folders
// and modification times; a single file too.
func TestUploadDownloadTree(t *testing.T) {
	sb := sharedSandbox(t)
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "tree")
	os.MkdirAll(filepath.Join(src, "sub/empty"), 0o750)
	os.WriteFile(filepath.Join(src, "sub/data.bin"), bytes.Repeat([]byte{0, 1, 2}, 100000), 0o640)
	os.WriteFile(filepath.Join(src, "run.sh"), []byte("#!/bin/sh\necho ran\n"), 0o755)
	os.Symlink("sub/data.bin", filepath.Join(src, "link"))
	old := time.Date(2021, 6, 7, 8, 9, 10, 0, time.UTC)
	os.Chtimes(filepath.Join(src, "sub/data.bin"), old, old)
	guest := "/tmp/uploaded-" + filepath.Base(t.TempDir())
	if err := sb.Upload(ctx, src, guest, FileOptions{}); err != nil {
		t.Fatal(err)
	}
	defer sb.Remove(ctx, guest, FileOptions{Recursive: true})
	r := run(t, sb, ExecRequest{Command: "cd " + guest + " && ./run.sh && stat -c '%n %a %F' sub sub/empty sub/data.bin run.sh && readlink link && date -u -r sub/data.bin +%Y"})
	want := "ran\nsub 750 directory\nsub/empty 750 directory\nsub/data.bin 640 regular file\nrun.sh 755 regular file\nsub/data.bin\n2021\n"
	if string(r.Stdout) != want {
		t.Fatalf("in the guest:\n%s\nwant:\n%s(stderr %s)", r.Stdout, want, r.Stderr)
	}
	back := filepath.Join(t.TempDir(), "back")
	if err := sb.Download(ctx, guest, back, FileOptions{}); err != nil {
		t.Fatal(err)
	}
	for rel, mode := range map[string]fs.FileMode{"sub": fs.ModeDir | 0o750, "sub/empty": fs.ModeDir | 0o750, "sub/data.bin": 0o640, "run.sh": 0o755} {
		if fi, err := os.Lstat(filepath.Join(back, rel)); err != nil || fi.Mode() != mode {
			t.Errorf("downloaded %s: %v %v, want %v", rel, err, fi.Mode(), mode)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(back, "sub/data.bin")); !bytes.Equal(got, bytes.Repeat([]byte{0, 1, 2}, 100000)) {
		t.Error("downloaded data differs")
	}
	if target, _ := os.Readlink(filepath.Join(back, "link")); target != "sub/data.bin" {
		t.Errorf("downloaded symlink: %q", target)
	}
	one := filepath.Join(t.TempDir(), "hostname")
	if err := sb.Download(ctx, "/etc/hostname", one, FileOptions{}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(one); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("a single file downloaded: %v %v", fi, err)
	}
	if err := sb.Upload(ctx, src, guest, FileOptions{}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("an upload onto an existing path: %v", err)
	}
}

// Every file call runs as the user its options name: nobody is refused
// where root would not be, and what nobody makes belongs to nobody.
func TestEveryFileCallRunsAsItsUser(t *testing.T) {
	sb := sharedSandbox(t)
	ctx := context.Background()
	run(t, sb, ExecRequest{Command: "rm -rf /tmp/asuser && mkdir -p /tmp/asuser/closed/inner && echo x > /tmp/asuser/closed/f && chmod 700 /tmp/asuser/closed && mkdir -m 777 /tmp/asuser/open"})
	defer sb.Remove(ctx, "/tmp/asuser", FileOptions{Recursive: true})
	nobody := FileOptions{User: "nobody"}
	denied := map[string]error{}
	_, denied["Stat"] = sb.Stat(ctx, "/tmp/asuser/closed/f", nobody)
	_, denied["ListDir"] = sb.ListDir(ctx, "/tmp/asuser/closed", nobody)
	denied["Remove"] = sb.Remove(ctx, "/tmp/asuser/closed/f", nobody)
	denied["Rename"] = sb.Rename(ctx, "/tmp/asuser/closed/f", "/tmp/asuser/open/f", nobody)
	denied["MakeDir"] = sb.MakeDir(ctx, "/tmp/asuser/closed/d", FileOptions{User: "nobody", Parents: true})
	host := t.TempDir()
	denied["Download"] = sb.Download(ctx, "/tmp/asuser/closed", filepath.Join(host, "got"), nobody)
	src := filepath.Join(host, "src")
	os.WriteFile(src, []byte("up"), 0o644)
	denied["Upload"] = sb.Upload(ctx, src, "/tmp/asuser/closed/up", nobody)
	for call, err := range denied {
		if !errors.Is(err, ErrPermission) {
			t.Errorf("%s as nobody in a folder only root may enter: %v, want a permission error", call, err)
		}
	}
	if ok, err := sb.Exists(ctx, "/tmp/asuser/closed/f", nobody); ok || !errors.Is(err, ErrPermission) {
		t.Errorf("Exists as nobody behind a closed folder: %v, %v", ok, err)
	}
	// Root still sees it all: the refusals were nobody's.
	if ok, err := sb.Exists(ctx, "/tmp/asuser/closed/f", FileOptions{}); !ok || err != nil {
		t.Fatalf("Exists as root: %v, %v", ok, err)
	}
	if err := sb.Upload(ctx, src, "/tmp/asuser/open/up", nobody); err != nil {
		t.Fatal(err)
	}
	if err := sb.MakeDir(ctx, "/tmp/asuser/open/d", nobody); err != nil {
		t.Fatal(err)
	}
	if r := run(t, sb, ExecRequest{Command: "stat -c '%U' /tmp/asuser/open/up /tmp/asuser/open/d"}); string(r.Stdout) != "nobody\nnobody\n" {
		t.Fatalf("what nobody made belongs to %q", r.Stdout)
	}
}
