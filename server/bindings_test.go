package server

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// One sandbox on the real server, reached from four processes in three
// languages through the C ABI they already use (issue 26): Python makes it
// with metadata, writes a file and exits without stopping it; Node finds
// it by metadata and by id and reads the file; a C program connects by id
// and runs a command; Python connects again, sees what C wrote, stops it,
// and it is gone from the list.

// bindingEnv is what the test needs from `make test-go`: it fails, never
// skips, without them.
func bindingEnv(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("$%s is not set: run this test through `make test-go`, which sets it", name)
	}
	if _, err := os.Stat(v); err != nil {
		t.Fatalf("$%s: %v", name, err)
	}
	return v
}

// runProcess runs a program with env added to the test's, and returns its
// standard output; it fails the test with its standard error if it fails.
func runProcess(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// connectC is the C program: it connects to the sandbox argv[1] through
// $QUICKSAND_SERVER and $QUICKSAND_API_KEY (NULL options), runs argv[2]
// and writes the result map (msgpack) to stdout.
const connectC = `
#include <stdio.h>
#include <string.h>
#include "quicksand.h"

int main(int argc, char **argv) {
    qs_sandbox *sb = NULL;
    qs_error *err = NULL;
    if (argc != 3) return 2;
    if (qs_sandbox_connect(argv[1], NULL, 0, &sb, &err) != QS_OK) {
        fprintf(stderr, "connect: %s\n", qs_error_message(err));
        return 1;
    }
    /* {"command": argv[2]} */
    size_t n = strlen(argv[2]);
    uint8_t req[300] = {0x81, 0xa7, 'c', 'o', 'm', 'm', 'a', 'n', 'd', 0xd9, (uint8_t)n};
    if (n > 255) return 2;
    memcpy(req + 11, argv[2], n);
    qs_buffer res = {0};
    if (qs_sandbox_execute(sb, req, 11 + n, NULL, NULL, &res, &err) != QS_OK) {
        fprintf(stderr, "execute: %s\n", qs_error_message(err));
        return 1;
    }
    fwrite(res.data, 1, res.len, stdout);
    qs_buffer_free(&res);
    qs_sandbox_free(sb); /* a server's sandbox: left running */
    return 0;
}
`

func TestBindingsShareASandboxAcrossProcesses(t *testing.T) {
	lib := bindingEnv(t, "QUICKSAND_LIB")
	python := bindingEnv(t, "QUICKSAND_TEST_PYTHON")
	node := bindingEnv(t, "QUICKSAND_TEST_NODE")
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t)
	label := "bindings-" + time.Now().Format("150405.000000")
	// Python and Node name the server and key; C takes them from the
	// environment, as every binding may.
	pyEnv := []string{"QUICKSAND_LIB=" + lib, "PYTHONPATH=" + filepath.Join(root, "bindings", "python"),
		"QS_SERVER=" + s.base, "QS_KEY=" + keyA, "QS_LABEL=" + label}

	// 1. Python makes it and exits without stopping it.
	id := strings.TrimSpace(runProcess(t, pyEnv, python, "-c", `
import os
from quicksand import SyncSandbox
sb = SyncSandbox(server=os.environ["QS_SERVER"], api_key=os.environ["QS_KEY"], metadata={"test": os.environ["QS_LABEL"]}).start()
assert sb.remote and sb.metadata == {"test": os.environ["QS_LABEL"]}, (sb.remote, sb.metadata)
sb.write_file("/tmp/shared", "from python")
print(sb.id)
`))
	if !strings.HasPrefix(id, "sb-") {
		t.Fatalf("Python printed the id %q", id)
	}
	t.Cleanup(func() { s.do("DELETE", "/v1/sandboxes/"+id, keyA, nil) })

	// 2. Node finds it by metadata and by id, and reads the file.
	out := runProcess(t, append(pyEnv, "QS_ID="+id), node, "-e", `
const { Sandbox } = require(`+jsString(filepath.Join(root, "bindings", "node"))+`);
(async () => {
  const opts = { server: process.env.QS_SERVER, apiKey: process.env.QS_KEY };
  const found = await Sandbox.list({ ...opts, metadata: { test: process.env.QS_LABEL } });
  const none = await Sandbox.list({ ...opts, metadata: { test: 'nobody-' + process.env.QS_LABEL } });
  const sb = await Sandbox.connect(process.env.QS_ID, opts);
  const data = (await sb.readFile('/tmp/shared')).toString();
  console.log(JSON.stringify({ found, none, data, id: sb.id, metadata: sb.metadata, remote: sb.remote }));
})().catch((e) => { console.error(e); process.exit(1); });
`)
	var seen struct {
		Found []struct {
			ID       string            `json:"id"`
			Metadata map[string]string `json:"metadata"`
			Running  bool              `json:"running"`
			Created  float64           `json:"created"`
		} `json:"found"`
		None     []any             `json:"none"`
		Data     string            `json:"data"`
		ID       string            `json:"id"`
		Metadata map[string]string `json:"metadata"`
		Remote   bool              `json:"remote"`
	}
	if err := json.Unmarshal([]byte(out), &seen); err != nil {
		t.Fatalf("Node said %q: %v", out, err)
	}
	if len(seen.Found) != 1 || seen.Found[0].ID != id || !seen.Found[0].Running || seen.Found[0].Metadata["test"] != label ||
		time.Since(time.Unix(int64(seen.Found[0].Created), 0)) > time.Hour {
		t.Errorf("Node listed %+v by metadata, want the one sandbox %s", seen.Found, id)
	}
	if len(seen.None) != 0 || seen.Data != "from python" || seen.ID != id || seen.Metadata["test"] != label || !seen.Remote {
		t.Errorf("Node saw %+v", seen)
	}

	// 3. C connects by id (the environment's server and key) and runs a
	// command on it.
	dir := t.TempDir()
	src, bin := filepath.Join(dir, "connect.c"), filepath.Join(dir, "connect")
	if err := os.WriteFile(src, []byte(connectC), 0o644); err != nil {
		t.Fatal(err)
	}
	runProcess(t, nil, "cc", "-Wall", "-Werror", "-I", filepath.Join(root, "include"), "-o", bin, src,
		"-L", filepath.Dir(lib), "-lquicksand", "-Wl,-rpath,"+filepath.Dir(lib))
	raw := runProcess(t, []string{"QUICKSAND_SERVER=" + s.base, "QUICKSAND_API_KEY=" + keyA}, bin, id,
		"cat /tmp/shared && printf ' and C' >> /tmp/shared")
	var result struct {
		Stdout   []byte `msgpack:"stdout"`
		ExitCode int    `msgpack:"exit_code"`
	}
	if err := msgpack.Unmarshal([]byte(raw), &result); err != nil || result.ExitCode != 0 || string(result.Stdout) != "from python" {
		t.Fatalf("C's command: %+v %v", result, err)
	}

	// 4. Python connects, sees what C wrote, stops it; it is gone.
	out = runProcess(t, append(pyEnv, "QS_ID="+id), python, "-c", `
import os
from quicksand import SyncSandbox
opts = dict(server=os.environ["QS_SERVER"], api_key=os.environ["QS_KEY"])
sb = SyncSandbox.connect(os.environ["QS_ID"], **opts)
print(sb.read_file("/tmp/shared").decode())
sb.stop()
print(len(SyncSandbox.list(metadata={"test": os.environ["QS_LABEL"]}, **opts)))
`)
	if out != "from python and C\n0\n" {
		t.Fatalf("Python's second process said %q", out)
	}
	if code, body := s.do("GET", "/v1/sandboxes/"+id, keyA, nil); code != 404 {
		t.Fatalf("the server still has the stopped sandbox: %d %s", code, body)
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
