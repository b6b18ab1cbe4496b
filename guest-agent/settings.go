package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// Where a guest agent finds its token, most trusted first:
//
//   - tokenStatePath: the token this boot's agent accepted last, kept on a
//     tmpfs (in RAM, so checkpoints and saves keep it with the rest of the
//     VM) readable by root only. An agent server that restarts (killed, OOM)
//     takes it up again, so a sandbox accepts only the token it was given
//     or rekeyed to, never an older one.
//   - the fw_cfg file protocol.FwCfgToken: how our engine hands the token
//     over. QEMU reads it from an owner-only file, so it appears on no
//     command line; in the guest only root can read it.
//   - quicksand_token= on the kernel command line: how Quicksand's engine
//     does it. Every local user on the host can read a QEMU's command line
//     (and every guest user /proc/cmdline), so our engine never uses it.
const (
	tokenStatePath = "/run/quicksand/token"
	fwCfgTokenPath = "/sys/firmware/qemu_fw_cfg/by_name/" + protocol.FwCfgToken + "/raw"
)

// settings is what the agent needs to serve: where to listen and which token
// to accept.
type settings struct {
	listen string // host part of the listen address; empty means all
	port   int
	token  string
	// tokenState, if set, is where the accepted token is kept (see
	// tokenStatePath); /resume writes the new one there.
	tokenState string
	// fwCfgToken is the fw_cfg file the host hands the token over in; the
	// agent reads it again on every request (seal.go).
	fwCfgToken string
	// keyedBy is what fwCfgToken held when the token was taken.
	keyedBy string
	// maxOutput is the default cap on bytes /execute keeps per stream.
	maxOutput int64
	// headerTimeout bounds reading a request's headers, and the body of a
	// request that needs no token (/authenticate).
	headerTimeout time.Duration
	// serialSocket, if set, is a unix socket on which the agent serves
	// Quicksand's framed transport (serial.go) to each connection, as it
	// does on the VM's virtio-serial port: for tests on the host.
	serialSocket string
}

// loadSettings reads the token and port (see the order above) and lets
// flags override them, so that the same binary runs inside a VM and on the
// host in tests. inGuest sets the guest's default paths.
func loadSettings(args []string, inGuest bool) (settings, error) {
	fs := flag.NewFlagSet("quicksand-agent", flag.ContinueOnError)
	cmdlinePath := fs.String("cmdline", "/proc/cmdline", "file holding the kernel command line")
	fwCfg, state := "", ""
	if inGuest {
		fwCfg, state = fwCfgTokenPath, tokenStatePath
	}
	fwCfgPath := fs.String("fwcfg-token", fwCfg, "file holding the token handed over by the host (fw_cfg)")
	statePath := fs.String("token-state", state, "file keeping the accepted token across restarts")
	token := fs.String("token", "", "token to accept (overrides every other source)")
	port := fs.Int("port", 0, "port to listen on (overrides "+protocol.CmdlinePort+")")
	listen := fs.String("listen", "", "address to listen on (default: all addresses)")
	headerTimeout := fs.Duration("header-timeout", 10*time.Second, "time allowed for a request's headers (and an unauthenticated body)")
	maxOutput := fs.Int64("max-output", protocol.DefaultMaxOutput, "default cap in bytes on what /execute keeps per stream")
	serialSocket := fs.String("serial-socket", "", "unix socket to serve the framed transport on (tests; in a VM it is the "+protocol.AgentPortName+" port)")
	if err := fs.Parse(args); err != nil {
		return settings{}, err
	}
	s := settings{listen: *listen, maxOutput: *maxOutput, tokenState: *statePath, fwCfgToken: *fwCfgPath, headerTimeout: *headerTimeout, serialSocket: *serialSocket}

	var kv map[string]string
	if raw, err := os.ReadFile(*cmdlinePath); err == nil {
		kv = parseCmdline(string(raw))
	} else if *token == "" || *port == 0 {
		return settings{}, fmt.Errorf("reading kernel command line: %w", err)
	}
	kept, fw := readToken(*statePath), readToken(*fwCfgPath)
	s.token = firstToken(*token, kept, fw, kv[protocol.CmdlineToken])
	if s.token == "" {
		return settings{}, fmt.Errorf("no token: neither fw_cfg %s nor %s= on the kernel command line", protocol.FwCfgToken, protocol.CmdlineToken)
	}
	// A token kept by an earlier server of this VM was taken under what
	// fw_cfg held then (and stays sealed if that was another QEMU's).
	s.keyedBy = fw
	if kept != "" && *token == "" && s.tokenState != "" {
		if raw, err := os.ReadFile(keyedByPath(s.tokenState)); err == nil {
			s.keyedBy = strings.TrimSpace(string(raw))
		}
	}
	if err := s.keepToken(s.token); err != nil {
		return settings{}, err
	}
	if err := s.keepKeyedBy(s.keyedBy); err != nil {
		return settings{}, fmt.Errorf("keeping the token: %w", err)
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

func firstToken(candidates ...string) string {
	for _, t := range candidates {
		if t != "" {
			return t
		}
	}
	return ""
}

// readToken reads a token file; a missing or unreadable one is no token.
func readToken(path string) string {
	if path == "" {
		return ""
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(raw))
}

// keepToken records token as the one this VM accepts (see tokenStatePath):
// written whole to a new file, then renamed over the old, readable by root
// alone.
func (s settings) keepToken(token string) error {
	if s.tokenState == "" {
		return nil
	}
	dir := filepath.Dir(s.tokenState)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("keeping the token: %w", err)
	}
	tmp := s.tokenState + ".new"
	if err := os.WriteFile(tmp, []byte(token), 0o600); err != nil {
		return fmt.Errorf("keeping the token: %w", err)
	}
	if err := os.Rename(tmp, s.tokenState); err != nil {
		return fmt.Errorf("keeping the token: %w", err)
	}
	return nil
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
