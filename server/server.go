// Package server is `quicksand serve`: sandboxes kept on one host for
// clients in other processes and on other hosts, over HTTP/JSON with
// output as Server-Sent Events (docs/server-openapi.yaml). Each API key is
// a tenant that sees only its own sandboxes.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/pkg/errors"

	"github.com/quicksand-go/quicksand/engine"
)

// Options configure a server.
type Options struct {
	// Listen is "host:port" (default 127.0.0.1:7070) or "unix:/path". A
	// non-loopback address needs TLS.
	Listen string
	// KeysFile holds the API keys (see loadKeys). Default:
	// $XDG_CONFIG_HOME/quicksand/server-keys, made with one fresh key when
	// it does not exist.
	KeysFile string
	// TLSCert and TLSKey are PEM files; both or neither.
	TLSCert, TLSKey string
	// MountRoots are the host folders under which sandboxes may mount
	// folders (none by default: no mounts).
	MountRoots []string
	// DataDir keeps the tenants' saves, and the sandboxes saved across a
	// restart (default $XDG_DATA_HOME/quicksand/server).
	DataDir string
	// ImageDirs are searched for images before the engine's defaults.
	ImageDirs []string
	// IdleTimeout is a sandbox's idle timeout when its create gives none
	// (default 5 minutes).
	IdleTimeout time.Duration
	// Pools keep started sandboxes of these configurations (see ParsePool).
	Pools []PoolSpec
	// Logger takes the request log and the engine's decisions (default:
	// slog's default logger).
	Logger *slog.Logger
	// Version is reported by /v1/health.
	Version string
}

// Server serves sandboxes.
type Server struct {
	opts     Options
	keys     *keyring
	reg      *registry
	pools    *pools
	metrics  *metrics
	log      *slog.Logger
	listener net.Listener
	http     *http.Server
	roots    []string // MountRoots, resolved

	stopReaper context.CancelFunc
	closeOnce  sync.Once
	// life is every request's base context; Close cancels it so that the
	// calls in flight end at once, with errRestarting as its cause.
	life    context.Context
	endLife context.CancelCauseFunc
}

// errRestarting is why Close ends the calls in flight.
var errRestarting = errors.New("the server is restarting")

// New checks the options, loads the keys and opens the listener; Serve
// then answers on it.
func New(opts Options) (*Server, error) {
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:7070"
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = 300 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.DataDir == "" {
		opts.DataDir = defaultDataDir()
	}
	// The server's sandboxes are its own, whatever its environment says
	// of a server for the library's clients to use.
	os.Unsetenv("QUICKSAND_SERVER")
	s := &Server{opts: opts, reg: newRegistry(), metrics: newMetrics(), log: opts.Logger}
	var err error
	if s.keys, err = openKeys(opts.KeysFile, s.log); err != nil {
		return nil, err
	}
	if s.roots, err = resolveRoots(opts.MountRoots); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, errors.Wrap(err, "making the data folder")
	}
	var tlsConfig *tls.Config
	if (opts.TLSCert == "") != (opts.TLSKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if opts.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(opts.TLSCert, opts.TLSKey)
		if err != nil {
			return nil, errors.Wrap(err, "loading the TLS certificate")
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if s.listener, err = listen(opts.Listen, tlsConfig); err != nil {
		return nil, err
	}
	// The sandboxes the last stop saved come back before any request is
	// answered (those that arrive meanwhile wait on the listener).
	if err := s.resumeAll(context.Background()); err != nil {
		s.listener.Close()
		return nil, err
	}
	if s.pools, err = startPools(opts.Pools, s.engineConfig, s.log); err != nil {
		s.listener.Close()
		s.saveAll(context.Background())
		return nil, err
	}
	s.life, s.endLife = context.WithCancelCause(context.Background())
	s.http = &http.Server{
		BaseContext: func(net.Listener) context.Context { return s.life },
		Handler:     s.Handler(),
		// A client that sends its headers slowly holds a connection, not
		// the server: bounded. Bodies and answers are streams of any
		// length (files, output), so they are bounded by their calls.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stopReaper = cancel
	go s.reg.reapIdle(ctx, time.Second, s.stopEntry)
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.listener.Addr() }

// Serve answers requests until Close; it returns nil after Close.
func (s *Server) Serve() error {
	err := s.http.Serve(s.listener)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// DefaultStopTimeout bounds a stop: saving every sandbox. Measured under
// TCG on 2 cores: see docs/deploy.md.
const DefaultStopTimeout = 120 * time.Second

// callsGrace bounds the wait for the calls in flight to end once Close
// cancelled them (a handler blocked reading a slow client's body does not
// see its context); then their connections are closed under them.
const callsGrace = 5 * time.Second

// Close stops answering, ends every call in flight with errRestarting,
// closes the pools, and saves every sandbox for the next start (see
// saveAll) within ctx's time; what it leaves no time for is lost.
func (s *Server) Close(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		began := time.Now()
		s.stopReaper()
		s.endLife(errRestarting)
		calls, cancel := context.WithTimeout(ctx, callsGrace)
		if serr := s.http.Shutdown(calls); serr != nil {
			s.log.Warn("calls still in flight after the grace: closing their connections", "err", serr)
			s.http.Close()
		}
		cancel()
		s.pools.close()
		n := s.reg.count.Load()
		s.saveAll(ctx)
		s.log.Info("stopped", "sandboxes", n, "duration", time.Since(began))
	})
	return err
}

// restarting turns the failure of a call that Close ended into one that
// says so (a client may retry once the server is back).
func (s *Server) restarting(err error) error {
	if err == nil || s.life.Err() == nil {
		return err
	}
	return apiError(engine.KindNotRunning, "%v: this call was ended so that its sandbox can be saved (%v)", errRestarting, err)
}

// stopEntry stops a sandbox the registry no longer holds.
func (s *Server) stopEntry(e *entry, why string) {
	s.log.Info("stopping a sandbox", "id", e.id, "tenant", e.tenant, "why", why)
	if err := e.sb.Stop(context.Background()); err != nil {
		s.log.Warn("stopping a sandbox", "id", e.id, "err", err)
	}
	s.forget(e)
	s.metrics.sandboxStopped()
}

// openKeys loads the keys file, or makes the default one.
func openKeys(path string, log *slog.Logger) (*keyring, error) {
	if path == "" {
		path = defaultKeysFile()
		if _, err := os.Stat(path); os.IsNotExist(err) {
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return nil, errors.Wrap(err, "making the keys file's folder")
			}
			if _, err := newKeysFile(path, func(b []byte) error { _, err := rand.Read(b); return err }); err != nil {
				return nil, err
			}
			log.Info("made a keys file with one new key: give it to clients as QUICKSAND_API_KEY", "file", path)
		}
	}
	return loadKeys(path)
}

func defaultKeysFile() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "quicksand", "server-keys")
}

func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "quicksand", "server")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "share", "quicksand", "server")
}

// engineConfig is the engine's config for a sandbox of the server: the
// server's image folders and logger under what the client asked.
func (s *Server) engineConfig(cfg engine.Config) engine.Config {
	cfg.ImageDirs = append(cfg.ImageDirs, s.opts.ImageDirs...)
	cfg.Logger = s.log
	return cfg
}
