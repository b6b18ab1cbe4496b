package server

import (
	"net/http"

	api "github.com/quicksand-go/quicksand/internal/serverapi"

	"github.com/quicksand-go/quicksand/engine"
)

// A sandbox's network policy (PUT PathNetwork; null removes it) and its
// guard's counts (GET). The entry keeps the policy for its restart record,
// so that a resumed sandbox keeps it.

func (s *Server) setNetwork(c *call) error {
	var p *api.NetworkPolicy
	if err := readJSON(c.w, c.r, &p); err != nil {
		return err
	}
	policy := (*engine.NetworkPolicy)(p)
	if err := c.entry.sb.SetNetwork(c.ctx(), policy); err != nil {
		return err
	}
	c.entry.setPolicy(policy)
	return c.noContent()
}

func (s *Server) networkStats(c *call) error {
	st, err := c.entry.sb.NetworkStats()
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, api.NetworkStats(st))
}

// setPolicy keeps the policy now in force (for the record).
func (e *entry) setPolicy(p *engine.NetworkPolicy) {
	e.mu.Lock()
	e.policy = p
	e.mu.Unlock()
}
