package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// settings is what the agent needs to serve: where to listen and which token
// to accept.
type settings struct {
	listen string // host part of the listen address; empty means all
	port   int
	token  string
	// maxOutput is the default cap on bytes /execute keeps per stream.
	maxOutput int64
}

// loadSettings reads the kernel command line and lets flags override it, so
// that the same binary runs inside a VM and on the host in tests.
func loadSettings(args []string) (settings, error) {
	fs := flag.NewFlagSet("quicksand-agent", flag.ContinueOnError)
	cmdlinePath := fs.String("cmdline", "/proc/cmdline", "file holding the kernel command line")
	token := fs.String("token", "", "token to accept (overrides "+protocol.CmdlineToken+")")
	port := fs.Int("port", 0, "port to listen on (overrides "+protocol.CmdlinePort+")")
	listen := fs.String("listen", "", "address to listen on (default: all addresses)")
	maxOutput := fs.Int64("max-output", protocol.DefaultMaxOutput, "default cap in bytes on what /execute keeps per stream")
	if err := fs.Parse(args); err != nil {
		return settings{}, err
	}
	s := settings{listen: *listen, maxOutput: *maxOutput}

	var kv map[string]string
	if *token == "" || *port == 0 {
		raw, err := os.ReadFile(*cmdlinePath)
		if err != nil {
			return settings{}, fmt.Errorf("reading kernel command line: %w", err)
		}
		kv = parseCmdline(string(raw))
	}
	s.token = *token
	if s.token == "" {
		s.token = kv[protocol.CmdlineToken]
	}
	if s.token == "" {
		return settings{}, fmt.Errorf("no token: %s= is missing from the kernel command line", protocol.CmdlineToken)
	}
	s.port = *port
	if s.port == 0 {
		p, ok := kv[protocol.CmdlinePort]
		if !ok {
			return settings{}, fmt.Errorf("no port: %s= is missing from the kernel command line", protocol.CmdlinePort)
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return settings{}, fmt.Errorf("bad %s=%q: %w", protocol.CmdlinePort, p, err)
		}
		s.port = n
	}
	if s.port <= 0 || s.port > 65535 {
		return settings{}, fmt.Errorf("port %d is out of range", s.port)
	}
	return s, nil
}

// parseCmdline splits a kernel command line into key=value pairs. Words
// without '=' are kept with an empty value; a later key wins, as in the
// kernel.
func parseCmdline(line string) map[string]string {
	kv := map[string]string{}
	for _, word := range strings.Fields(line) {
		k, v, _ := strings.Cut(word, "=")
		kv[k] = v
	}
	return kv
}
