package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/quicksand-go/quicksand/engine"
)

// fileFigures times files in and out of a sandbox: a file of size bytes
// written and read (streamed through the agent), and a tree of many small
// files uploaded.
func fileFigures(ctx context.Context, sb *engine.Sandbox, n, size, smallFiles int) []figure {
	write := figure{Name: fmt.Sprintf("write a %d MiB file into the guest", size>>20), Via: "Go", Unit: "MB/s", Command: "sb.WriteFile from memory"}
	read := figure{Name: fmt.Sprintf("read a %d MiB file from the guest", size>>20), Via: "Go", Unit: "MB/s", Command: "sb.ReadFile to io.Discard"}
	up := figure{Name: fmt.Sprintf("upload a tree of %d small files", smallFiles), Via: "Go", Unit: "s", Command: "sb.Upload of a folder of 100-byte files"}
	data := make([]byte, size)
	var ws, rs, us sample
	for i := 0; i < n; i++ {
		start := time.Now()
		if _, err := sb.WriteFile(ctx, "/root/bench-file", bytes.NewReader(data), engine.FileOptions{}); err != nil {
			return []figure{failed(write, err), failed(read, err), failed(up, err)}
		}
		ws.add(float64(size) / 1e6 / time.Since(start).Seconds())
		start = time.Now()
		if _, err := sb.ReadFile(ctx, "/root/bench-file", io.Discard, engine.FileOptions{MaxSize: -1}); err != nil {
			return []figure{fill(write, &ws), failed(read, err), failed(up, err)}
		}
		rs.add(float64(size) / 1e6 / time.Since(start).Seconds())
	}
	sb.Remove(ctx, "/root/bench-file", engine.FileOptions{})
	tree, err := os.MkdirTemp("", "qsbench-tree")
	if err != nil {
		return []figure{fill(write, &ws), fill(read, &rs), failed(up, err)}
	}
	defer os.RemoveAll(tree)
	for i := 0; i < smallFiles; i++ {
		dir := filepath.Join(tree, fmt.Sprintf("d%02d", i%50))
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", i)), bytes.Repeat([]byte("x"), 100), 0o644)
	}
	for i := 0; i < n; i++ {
		dest := fmt.Sprintf("/root/bench-tree-%d", i)
		start := time.Now()
		if err := sb.Upload(ctx, tree, dest, engine.FileOptions{}); err != nil {
			return []figure{fill(write, &ws), fill(read, &rs), failed(up, err)}
		}
		us.add(time.Since(start).Seconds())
		sb.Remove(ctx, dest, engine.FileOptions{Recursive: true})
	}
	return []figure{fill(write, &ws), fill(read, &rs), fill(up, &us)}
}
