package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/quicksand-go/quicksand/engine"
)

// The host's memory for a command with a lot of output (`make
// bench-output`): each binding runs one command that writes outputBytes,
// with a callback that drops the chunks and without one, each in a process
// of its own, whose peak RSS (getrusage's ru_maxrss) is the figure. Without
// a callback the result keeps max_output (default 256 MiB) of each stream;
// with one it keeps the same, and the callback gets it all.
const outputBytes = 1 << 30

var outputCommand = fmt.Sprintf("yes abcdefgh | head -c %d", outputBytes)

// outputChild is what a Go child process does (qsbench -output-child
// stream|collect): prints the bytes the caller got and the result kept.
func outputChild(mode string) {
	ctx := context.Background()
	sb, err := engine.Start(ctx, engine.Config{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer sb.Stop(ctx)
	req := engine.ExecRequest{Command: outputCommand, Timeout: 600e9}
	var got int64
	var res *engine.ExecResult
	if mode == "stream" {
		req.OnOutput = func(_ engine.Stream, p []byte) error { got += int64(len(p)); return nil }
		res, err = sb.Execute(ctx, req)
	} else {
		res, err = sb.Execute(ctx, req)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(got, len(res.Stdout))
}

const pythonOutputChild = `
import sys
from quicksand import SyncSandbox
got = 0
def count(s):
    global got
    got += len(s)
with SyncSandbox() as sb:
    r = sb.execute(sys.argv[1], timeout=600, on_stdout=count if sys.argv[2] == "stream" else None)
    print(got, len(r.stdout_bytes))
`

const nodeOutputChild = `
const { Sandbox } = require('./bindings/node');
(async () => {
  const sb = await Sandbox.start({});
  let got = 0;
  const opts = { timeout: 600 };
  if (process.argv[2] === 'stream') opts.onStdout = (s) => { got += s.length; };
  const r = await sb.execute(process.argv[1], opts);
  console.log(got, r.stdoutBuffer.length);
  await sb.stop();
})().catch((e) => { console.error(e); process.exit(1); });
`

// outputMemory runs the table's children and prints it.
func outputMemory(cOutput string) {
	self, _ := os.Executable()
	python := "python3"
	if p := os.Getenv("QUICKSAND_PYTHON"); p != "" {
		python = p
	}
	vias := []struct {
		name string
		argv func(mode string) []string
	}{
		{"Go", func(m string) []string { return []string{self, "-output-child", m} }},
		{"C", func(m string) []string { return []string{cOutput, outputCommand, m} }},
		{"Python", func(m string) []string { return []string{python, "-c", pythonOutputChild, outputCommand, m} }},
		{"Node", func(m string) []string { return []string{"node", "-e", nodeOutputChild, outputCommand, m} }},
	}
	fmt.Printf("| via | callback | peak RSS (MiB) | bytes to the callback | bytes in the result |\n| --- | --- | --- | --- | --- |\n")
	for _, v := range vias {
		for _, mode := range []string{"collect", "stream"} {
			cmd := exec.Command(v.argv(mode)[0], v.argv(mode)[1:]...)
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			rss := "failed: " + fmt.Sprint(err)
			if err == nil {
				ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
				rss = fmt.Sprintf("%.0f", float64(ru.Maxrss)/1024)
			}
			f := strings.Fields(string(out))
			for len(f) < 2 {
				f = append(f, "?")
			}
			callback := "no"
			if mode == "stream" {
				callback = "yes"
			}
			fmt.Printf("| %s | %s | %s | %s | %s |\n", v.name, callback, rss, f[0], f[1])
		}
	}
}
