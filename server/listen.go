package server

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/pkg/errors"
)

// listen opens the server's address: "host:port", or "unix:/path" for a
// Unix socket that only the server's user may connect to. An address other
// than the loopback needs TLS: keys must not cross a network in clear.
func listen(addr string, tlsConfig *tls.Config) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		return listenUnix(path, tlsConfig)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, errors.Wrapf(err, "listen address %q (host:port or unix:/path)", addr)
	}
	if tlsConfig == nil && !isLoopback(host) {
		return nil, errors.Errorf("listen address %q is not the loopback: give --tls-cert and --tls-key, so that API keys never cross a network in clear", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, errors.Wrap(err, "listening")
	}
	if tlsConfig != nil {
		l = tls.NewListener(l, tlsConfig)
	}
	return l, nil
}

// isLoopback says whether host names only the loopback: a loopback IP or
// "localhost". An empty host or 0.0.0.0 listens on every interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// listenUnix makes the socket owner-only (0600, in a folder that is not
// world-writable is the caller's choice) before anyone can connect: it is
// created under a umask that leaves nothing to others.
func listenUnix(path string, tlsConfig *tls.Config) (net.Listener, error) {
	if !filepath.IsAbs(path) {
		return nil, errors.Errorf("unix socket path %q is not absolute", path)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, errors.Errorf("%s exists and is not a socket", path)
		}
		// A socket left by a server that died: a live one answers.
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, errors.Errorf("%s: another server is listening there", path)
		}
		os.Remove(path)
	}
	old := umask(0o177)
	l, err := net.Listen("unix", path)
	umask(old)
	if err != nil {
		return nil, errors.Wrap(err, "listening")
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, errors.Wrap(err, "making the socket owner-only")
	}
	if tlsConfig != nil {
		l = tls.NewListener(l, tlsConfig)
	}
	return l, nil
}
