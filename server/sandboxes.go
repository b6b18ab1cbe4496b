package server

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/quicksand-go/quicksand/engine"
	api "github.com/quicksand-go/quicksand/internal/serverapi"
)

// Limits on what a create may ask, so that one request cannot hold the
// server's memory with labels.
const (
	maxLabels     = 64
	maxLabelBytes = 1024
)

func (s *Server) health(c *call) error {
	return c.json(http.StatusOK, api.Health{Status: "ok", Version: s.opts.Version})
}

func (s *Server) capacity(c *call) error {
	total, avail := memInfo()
	return c.json(http.StatusOK, api.Capacity{
		Sandboxes: int(s.reg.count.Load()), MemoryTotal: total, MemoryAvailable: avail,
		Accelerator: s.metrics.accelerator(),
	})
}

// memInfo reads the host's total and available memory in bytes.
func memInfo() (total, available int64) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kib int64
		if n, _ := fmt.Sscanf(sc.Text(), "MemTotal: %d kB", &kib); n == 1 {
			total = kib << 10
		}
		if n, _ := fmt.Sscanf(sc.Text(), "MemAvailable: %d kB", &kib); n == 1 {
			available = kib << 10
		}
	}
	return total, available
}

func (s *Server) create(c *call) error {
	var req api.CreateSandbox
	if err := readJSON(c.w, c.r, &req); err != nil {
		return err
	}
	cfg, err := s.configOf(c.tenant, req)
	if err != nil {
		return err
	}
	if err := checkLabels(req.Metadata); err != nil {
		return err
	}
	timeout := s.opts.IdleTimeout
	if req.Timeout != nil {
		if *req.Timeout < 0 {
			return apiError(engine.KindBadRequest, "timeout %v is negative (0 is never)", *req.Timeout)
		}
		timeout = seconds(*req.Timeout)
	}
	began := time.Now()
	sb, pooled, err := s.pools.start(c.ctx(), cfg, s.hasSave(c.tenant, cfg.Image))
	if err != nil {
		s.metrics.startFailed()
		return err
	}
	s.metrics.started(time.Since(began), string(sb.Accelerator()), pooled)
	if c.ctx().Err() != nil {
		// The client went away while it booted: nobody knows its id.
		sb.Stop(context.Background())
		return apiError(engine.KindCancelled, "the client went away before the sandbox was ready")
	}
	e := &entry{id: newID(), tenant: c.tenant, sb: sb, image: cfg.Image, network: cfg.Network, metadata: maps.Clone(req.Metadata),
		created: time.Now(), timeout: timeout, lastUsed: time.Now(), policy: cfg.NetworkPolicy}
	if e.metadata == nil {
		e.metadata = map[string]string{}
	}
	s.reg.add(e)
	s.log.Info("started a sandbox", "id", e.id, "tenant", c.tenant, "image", cfg.Image, "from_pool", pooled, "duration", time.Since(began))
	return c.json(http.StatusCreated, e.describe())
}

func checkLabels(m map[string]string) error {
	if len(m) > maxLabels {
		return apiError(engine.KindBadRequest, "metadata has %d labels, more than %d", len(m), maxLabels)
	}
	for k, v := range m {
		if k == "" || len(k)+len(v) > maxLabelBytes {
			return apiError(engine.KindBadRequest, "metadata label %.40q: a key is not empty and a label is at most %d bytes", k, maxLabelBytes)
		}
	}
	return nil
}

// seconds is a JSON duration.
func seconds(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

func (s *Server) list(c *call) error {
	filter := map[string]string{}
	for _, kv := range c.r.URL.Query()["metadata"] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return apiError(engine.KindBadRequest, "metadata filter %q is not key=value", kv)
		}
		filter[k] = v
	}
	out := api.SandboxList{Sandboxes: []api.Sandbox{}}
	for _, e := range s.reg.list(c.tenant, filter) {
		out.Sandboxes = append(out.Sandboxes, e.describe())
	}
	return c.json(http.StatusOK, out)
}

func (s *Server) get(c *call) error { return c.json(http.StatusOK, c.entry.describe()) }

func (s *Server) remove(c *call) error {
	e, err := s.reg.take(c.tenant, c.entry.id)
	if err != nil {
		return err
	}
	if e.lost != "" {
		s.forget(e)
		return c.noContent()
	}
	s.stopEntry(e, "deleted by its client")
	return c.noContent()
}

func (s *Server) setTimeout(c *call) error {
	var req api.SetTimeout
	if err := readJSON(c.w, c.r, &req); err != nil {
		return err
	}
	if req.Timeout < 0 {
		return apiError(engine.KindBadRequest, "timeout %v is negative (0 is never)", req.Timeout)
	}
	c.entry.setTimeout(seconds(req.Timeout))
	return c.json(http.StatusOK, c.entry.describe())
}
