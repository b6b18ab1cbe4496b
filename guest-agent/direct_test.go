package main

import (
	"slices"
	"testing"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

func TestDirectArgv(t *testing.T) {
	direct := map[string][]string{
		"true":                        {"true"},
		"ls -la /tmp":                 {"ls", "-la", "/tmp"},
		"  pip  install\trequests==2": {"pip", "install", "requests==2"},
		"dd if=/dev/zero bs=1M":       {"dd", "if=/dev/zero", "bs=1M"},
		"./run.sh a,b x:y +1 @h %d":   {"./run.sh", "a,b", "x:y", "+1", "@h", "%d"},
	}
	for cmd, want := range direct {
		if got := directArgv(protocol.ExecRequest{Command: cmd, Shell: defaultShell}); !slices.Equal(got, want) {
			t.Errorf("%q: %q, want %q", cmd, got, want)
		}
	}
	viaShell := []string{
		"", "   ", "echo hi", "cd /tmp", "exit 3", "export A=1", "A=1 env", "test -f x", "[ -f x ]",
		"ls | wc", "ls; ls", "ls && ls", "ls > f", "cat < f", "echo $HOME", "ls *", "ls ?", "ls [ab]",
		"ls ~", "echo 'a b'", `echo "a"`, `ls a\ b`, "ls # c", "ls\nls", "(ls)", "{ ls; }", "! ls",
		"ls `pwd`", "ls é", "sleep 1 &", "if true", "kill 1", "pwd", "printf x",
	}
	for _, cmd := range viaShell {
		if got := directArgv(protocol.ExecRequest{Command: cmd, Shell: defaultShell}); got != nil {
			t.Errorf("%q: exec'd directly as %q, want the shell", cmd, got)
		}
	}
	if directArgv(protocol.ExecRequest{Command: "ls", Shell: "/bin/bash"}) != nil {
		t.Error("another shell was bypassed")
	}
	if directArgv(protocol.ExecRequest{Command: "ls", Shell: defaultShell, Env: map[string]string{"PATH": "/x"}}) != nil {
		t.Error("a request's own PATH was bypassed")
	}
}
