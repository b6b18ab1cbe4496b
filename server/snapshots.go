package server

import (
	"net/http"
	"os"
	"path/filepath"

	"github.com/quicksand-go/quicksand/engine"
	api "github.com/quicksand-go/quicksand/internal/serverapi"
)

func (s *Server) checkpoint(c *call) error {
	var req api.Tag
	if err := readJSON(c.w, c.r, &req); err != nil {
		return err
	}
	if err := c.entry.sb.Checkpoint(c.ctx(), req.Tag); err != nil {
		return err
	}
	return c.noContent()
}

func (s *Server) revert(c *call) error {
	var req api.Tag
	if err := readJSON(c.w, c.r, &req); err != nil {
		return err
	}
	if err := c.entry.sb.Revert(c.ctx(), req.Tag); err != nil {
		return err
	}
	return c.noContent()
}

// save writes the sandbox to the tenant's saves, where only the tenant's
// later creates find it (by name, as an image).
func (s *Server) save(c *call) error {
	var req api.Name
	if err := readJSON(c.w, c.r, &req); err != nil {
		return err
	}
	if !imageName.MatchString(req.Name) {
		return apiError(engine.KindBadRequest, "save name %q is not a name (letters, digits, '.', '_', '-')", req.Name)
	}
	dir := s.savesDir(c.tenant)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return apiError(engine.KindResource, "making the tenant's save folder: %v", err)
	}
	if _, err := c.entry.sb.Save(c.ctx(), filepath.Join(dir, req.Name)); err != nil {
		return err
	}
	return c.json(http.StatusOK, api.Name{Name: req.Name})
}

// hasSave says whether the tenant has a save of that name.
func (s *Server) hasSave(tenant, name string) bool {
	_, err := os.Stat(filepath.Join(s.savesDir(tenant), name))
	return err == nil
}
