package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// An option a file call does not use is refused by name, before anything
// reaches the guest (the sandbox here was never started).
func TestFileCallsRefuseOptionsTheyDoNotUse(t *testing.T) {
	sb := &Sandbox{}
	ctx := context.Background()
	for _, c := range []struct {
		name string
		call func() error
		want string
	}{
		{"Stat with a mode", func() error { _, err := sb.Stat(ctx, "/x", FileOptions{Mode: 0o600}); return err }, "Stat does not take the option Mode"},
		{"Exists, recursive", func() error { _, err := sb.Exists(ctx, "/x", FileOptions{Recursive: true}); return err }, "Exists does not take the option Recursive"},
		{"ListDir, max size", func() error { _, err := sb.ListDir(ctx, "/x", FileOptions{MaxSize: 5}); return err }, "ListDir does not take the option MaxSize"},
		{"MakeDir, recursive", func() error { return sb.MakeDir(ctx, "/x", FileOptions{Recursive: true, Parents: true}) }, "MakeDir does not take the option Recursive"},
		{"Remove, parents and mode", func() error { return sb.Remove(ctx, "/x", FileOptions{Parents: true, Mode: 0o700}) }, "Remove does not take the option Mode, Parents"},
		{"Rename, mode", func() error { return sb.Rename(ctx, "/x", "/y", FileOptions{Mode: 0o700}) }, "Rename does not take the option Mode"},
		{"WriteFile, parents", func() error {
			_, err := sb.WriteFile(ctx, "/x", strings.NewReader(""), FileOptions{Parents: true})
			return err
		}, "WriteFile does not take the option Parents"},
		{"ReadFile, mode", func() error {
			_, err := sb.ReadFile(ctx, "/x", &strings.Builder{}, FileOptions{Mode: 0o600})
			return err
		}, "ReadFile does not take the option Mode"},
		{"Upload, mode", func() error { return sb.Upload(ctx, "/x", "/y", FileOptions{Mode: 0o600}) }, "Upload does not take the option Mode"},
		{"Download, max size", func() error { return sb.Download(ctx, "/x", "/y", FileOptions{MaxSize: 1}) }, "Download does not take the option MaxSize"},
	} {
		err := c.call()
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s: got %v, want a bad request saying %q", c.name, err, c.want)
		}
	}
}
