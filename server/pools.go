package server

import (
	"context"
	"log/slog"
	"strconv"
	"strings"

	"github.com/pkg/errors"

	"github.com/quicksand-go/quicksand/engine"
)

// PoolSpec is a pool the server keeps: sandboxes of one image and size
// started ahead, handed to creates that ask for exactly that.
type PoolSpec struct {
	Image     string
	MemoryMiB int
	CPUs      int
	Size      int
}

// ParsePool reads --pool's value: "image=debian,size=4[,memory=512M][,cpus=1]".
func ParsePool(s string) (PoolSpec, error) {
	p := PoolSpec{Image: engine.DefaultImage, Size: 4}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return p, errors.Errorf("pool %q: %q is not key=value", s, kv)
		}
		var err error
		switch k {
		case "image":
			p.Image = v
		case "size":
			p.Size, err = strconv.Atoi(v)
		case "memory":
			p.MemoryMiB, err = engine.ParseMemory(v)
		case "cpus":
			p.CPUs, err = strconv.Atoi(v)
		default:
			return p, errors.Errorf("pool %q: unknown key %q (image, size, memory, cpus)", s, k)
		}
		if err != nil {
			return p, errors.Wrapf(err, "pool %q, %s", s, k)
		}
	}
	if p.Size < 1 || p.Size > engine.MaxPoolSize {
		return p, errors.Errorf("pool %q: size must be 1 to %d", s, engine.MaxPoolSize)
	}
	return p, nil
}

// pools are the server's pools, each with the config its sandboxes have.
type pools struct {
	list []keptPool
}

type keptPool struct {
	cfg  engine.Config
	pool *engine.Pool
}

func startPools(specs []PoolSpec, configure func(engine.Config) engine.Config, log *slog.Logger) (*pools, error) {
	ps := &pools{}
	for _, spec := range specs {
		cfg := configure(engine.Config{Image: spec.Image, MemoryMiB: spec.MemoryMiB, CPUs: spec.CPUs})
		p, err := engine.NewPool(cfg, spec.Size)
		if err != nil {
			ps.close()
			return nil, err
		}
		log.Info("keeping a pool", "image", spec.Image, "size", spec.Size)
		ps.list = append(ps.list, keptPool{cfg: cfg, pool: p})
	}
	return ps, nil
}

// start takes a sandbox of cfg from a pool that holds such sandboxes, or
// starts one. shadowed: the image's name is also one of the tenant's
// saves, which is what the tenant gets.
func (ps *pools) start(ctx context.Context, cfg engine.Config, shadowed bool) (sb *engine.Sandbox, pooled bool, err error) {
	for _, kp := range ps.list {
		if !shadowed && poolable(kp.cfg, cfg) {
			sb, err = kp.pool.Start(ctx)
			return sb, true, err
		}
	}
	sb, err = engine.Start(ctx, cfg)
	return sb, false, err
}

// poolable says whether a create of want may take a sandbox started with
// have: the same image, memory, CPUs, network and boot, and nothing the
// pool's sandboxes were not started with (mounts, a network policy).
func poolable(have, want engine.Config) bool {
	return want.Image == have.Image && orDefault(want.MemoryMiB, engine.DefaultMemoryMiB) == orDefault(have.MemoryMiB, engine.DefaultMemoryMiB) &&
		orDefault(want.CPUs, engine.DefaultCPUs) == orDefault(have.CPUs, engine.DefaultCPUs) &&
		want.Network == have.Network && !want.ColdBoot && len(want.Mounts) == 0 && want.NetworkPolicy == nil
}

// orDefault is v, or def for the zero value (the engine's default).
func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func (ps *pools) close() {
	for _, kp := range ps.list {
		kp.pool.Close()
	}
}
