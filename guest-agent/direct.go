package main

import (
	"strings"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// A command such as `ls -l /tmp` or `pip install requests` needs the shell
// only to split it into words and exec it. Starting /bin/sh first costs an
// extra exec of a dynamically linked program: about 0.7 ms of the ~4 ms a
// command takes in a TCG guest. So, like GNU make, the agent execs simple
// commands itself: only words made of characters no shell treats specially,
// separated by blanks, the first of which is neither a shell keyword nor a
// builtin that differs from the program of the same name (make's list,
// plus dash's own, plus echo, printf, kill and pwd, whose programs take
// other options). Anything else, a shell other than the default, a PATH
// of the request's own, or a program that cannot be found or exec'd (a
// script without #!), goes through the shell as before.

// shellWords must run in the shell: keywords, and builtins that act on the
// shell itself or differ from a program of the same name.
var shellWords = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`. : [ [[ { } ! alias bg break case cd chdir command continue do done
		echo elif else esac eval exec exit export fc fg fi for function getopts hash if in jobs kill let local
		login newgrp printf pwd read readonly return select set shift source test then time times trap type
		typeset ulimit umask unalias unset until wait while`) {
		shellWords[w] = true
	}
}

// plainByte says whether b means nothing special to a POSIX shell anywhere
// in a word.
func plainByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("-_./,:+@%=", b) >= 0
}

// directArgv returns the words of a command the agent can exec without a
// shell, or nil.
func directArgv(req protocol.ExecRequest) []string {
	if req.Shell != "" && req.Shell != defaultShell {
		return nil
	}
	if _, ok := req.Env["PATH"]; ok {
		return nil
	}
	for i := 0; i < len(req.Command); i++ {
		if b := req.Command[i]; b != ' ' && b != '\t' && !plainByte(b) {
			return nil
		}
	}
	words := strings.Fields(req.Command)
	if len(words) == 0 || shellWords[words[0]] || strings.Contains(words[0], "=") {
		return nil
	}
	return words
}
