package server

import (
	"path/filepath"
	"regexp"
	"strings"

	"github.com/pkg/errors"

	"github.com/quicksand-go/quicksand/engine"
	api "github.com/quicksand-go/quicksand/internal/serverapi"
)

// imageName is what a client may name as an image: a name, never a path
// (a path would boot any folder of the server's host).
var imageName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// configOf turns a create's body into the engine's config, refusing what
// a remote client may not choose.
func (s *Server) configOf(tenant string, req api.CreateSandbox) (engine.Config, error) {
	cfg := engine.Config{Image: req.Image, CPUs: req.CPUs, ColdBoot: req.ColdBoot, Network: engine.NetworkMode(req.Network),
		BootTimeout: seconds(req.BootTimeout), NetworkPolicy: (*engine.NetworkPolicy)(req.NetworkPolicy)}
	if cfg.Image == "" {
		cfg.Image = engine.DefaultImage
	}
	if !imageName.MatchString(cfg.Image) {
		return cfg, apiError(engine.KindInvalidConfig, "image %q is not an image name (letters, digits, '.', '_', '-')", cfg.Image)
	}
	// The tenant's own saves come first; other tenants' are not searched.
	cfg.ImageDirs = []string{s.savesDir(tenant)}
	switch m := req.Memory.(type) {
	case nil:
	case float64:
		if m != float64(int(m)) || m <= 0 {
			return cfg, apiError(engine.KindInvalidConfig, "memory %v is not a whole number of MiB", m)
		}
		cfg.MemoryMiB = int(m)
	case string:
		mib, err := engine.ParseMemory(m)
		if err != nil {
			return cfg, err
		}
		cfg.MemoryMiB = mib
	default:
		return cfg, apiError(engine.KindInvalidConfig, "memory is \"512M\", \"2G\" or MiB as a number")
	}
	for _, m := range req.Mounts {
		host, err := s.underRoot(m.Host)
		if err != nil {
			return cfg, err
		}
		cfg.Mounts = append(cfg.Mounts, engine.Mount{HostPath: host, GuestPath: m.Guest, ReadOnly: m.ReadOnly})
	}
	cfg = s.engineConfig(cfg)
	return cfg, cfg.Validate()
}

// savesDir is where a tenant's saves are kept.
func (s *Server) savesDir(tenant string) string {
	return filepath.Join(s.opts.DataDir, "tenants", tenant, "saves")
}

// resolveRoots makes the mount roots absolute with their links resolved.
func resolveRoots(roots []string) ([]string, error) {
	var out []string
	for _, r := range roots {
		abs, err := filepath.Abs(r)
		if err == nil {
			abs, err = filepath.EvalSymlinks(abs)
		}
		if err != nil {
			return nil, errors.Wrapf(err, "mount root %s", r)
		}
		out = append(out, abs)
	}
	return out, nil
}

// underRoot resolves a host folder a client asks to mount and refuses it
// unless it lies under one of the operator's mount roots (its links
// resolved first, so that a link cannot lead out).
func (s *Server) underRoot(host string) (string, error) {
	if len(s.roots) == 0 {
		return "", apiError(engine.KindInvalidConfig, "this server allows no mounts (the operator gives --mount-root)")
	}
	if !filepath.IsAbs(host) {
		return "", apiError(engine.KindInvalidConfig, "mount host path %q is not absolute", host)
	}
	resolved, err := filepath.EvalSymlinks(host)
	if err != nil {
		return "", apiError(engine.KindInvalidConfig, "mount host path %q: %v", host, err)
	}
	for _, root := range s.roots {
		if resolved == root || strings.HasPrefix(resolved, root+string(filepath.Separator)) {
			return resolved, nil
		}
	}
	return "", apiError(engine.KindInvalidConfig, "mount host path %q is under none of this server's mount roots", host)
}
