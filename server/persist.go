package server

// Nothing lost on a restart: Close saves every running sandbox (RAM and
// disk, as Sandbox.Save does) under DATA/state/<id>/ beside a record of
// whose it is, and New resumes them with the same id, tenant, metadata and
// idle timeout. A sandbox that cannot be saved (one with mounts, a save
// that fails, a stop that ran out of time) is stopped and kept as a
// record only, lost with the reason, until its tenant deletes it.
//
// DATA/state/<id>/ holds sandbox.json (the record) and save-<n>/ (the
// engine's save). A folder without a record is a save the server never
// finished, or the disk of a resumed sandbox whose server was killed:
// either way nothing to resume, and New removes it.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pkg/errors"

	"github.com/quicksand-go/quicksand/engine"
	api "github.com/quicksand-go/quicksand/internal/serverapi"
)

const recordFile = "sandbox.json"

// parallelSaves bounds the saves (and resumes) run at once: each is
// mostly the VM's RAM written to (or read from) the disk.
const parallelSaves = 2

// record is what the server keeps of a sandbox across a restart.
type record struct {
	ID       string            `json:"id"`
	Tenant   string            `json:"tenant"`
	Metadata map[string]string `json:"metadata"`
	Timeout  float64           `json:"timeout"` // idle seconds, 0: never
	Image    string            `json:"image"`
	Network  string            `json:"network,omitempty"`
	// Policy is the network policy in force when the server stopped.
	Policy  *api.NetworkPolicy `json:"network_policy,omitempty"`
	Created time.Time          `json:"created"`
	Save    string             `json:"save,omitempty"` // the save's folder, in the record's
	Lost    string             `json:"lost,omitempty"` // why it is gone
}

func (s *Server) stateRoot() string { return filepath.Join(s.opts.DataDir, "state") }

func (s *Server) stateDir(id string) string { return filepath.Join(s.stateRoot(), id) }

func (e *entry) record() record {
	e.mu.Lock()
	defer e.mu.Unlock()
	return record{ID: e.id, Tenant: e.tenant, Metadata: e.metadata, Timeout: e.timeout.Seconds(), Image: e.image,
		Network: string(e.network), Policy: (*api.NetworkPolicy)(e.policy), Created: e.created, Lost: e.lost}
}

// writeRecord writes the record whole or not at all (a stop cut short
// leaves the previous one, or none).
func writeRecord(dir string, r record) error {
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, recordFile+".tmp")
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return errors.Wrap(err, "writing a sandbox's record")
	}
	return errors.Wrap(os.Rename(tmp, filepath.Join(dir, recordFile)), "writing a sandbox's record")
}

func readRecord(dir string) (record, error) {
	var r record
	raw, err := os.ReadFile(filepath.Join(dir, recordFile))
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return r, errors.Wrapf(err, "%s", filepath.Join(dir, recordFile))
	}
	if r.ID != filepath.Base(dir) || r.Tenant == "" || (r.Save == "") == (r.Lost == "") ||
		strings.ContainsRune(r.Save, filepath.Separator) {
		return r, errors.Errorf("%s: not a record of this folder", filepath.Join(dir, recordFile))
	}
	return r, nil
}

// saveAll saves every running sandbox and stops it, parallelSaves at a
// time; what ctx leaves no time for is lost.
func (s *Server) saveAll(ctx context.Context) {
	work := make(chan *entry)
	var wg sync.WaitGroup
	for range parallelSaves {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range work {
				s.saveEntry(ctx, e)
			}
		}()
	}
	for _, e := range s.reg.all() {
		if e.lost != "" {
			continue // its record is on the disk already
		}
		if _, err := s.reg.take(e.tenant, e.id); err == nil {
			work <- e
		}
	}
	close(work)
	wg.Wait()
}

// saveEntry saves one sandbox with its record, or records it lost, and
// stops it.
func (s *Server) saveEntry(ctx context.Context, e *entry) {
	began := time.Now()
	dir := s.stateDir(e.id)
	rec := e.record()
	err := os.MkdirAll(dir, 0o700)
	if err == nil {
		if ctx.Err() == nil {
			rec.Save = fmt.Sprintf("save-%d", time.Now().UnixNano())
			_, err = e.sb.Save(ctx, filepath.Join(dir, rec.Save))
		}
		switch {
		case ctx.Err() != nil:
			rec.Save, rec.Lost = "", "the server's stop ran out of time (--stop-timeout) before it was saved"
		case err != nil:
			rec.Save, rec.Lost = "", "it could not be saved when the server stopped: "+err.Error()
		}
		err = writeRecord(dir, rec)
	}
	why := "the server stops: saved"
	switch {
	case err != nil:
		why = "the server stops: could not even record it: " + err.Error()
	case rec.Lost != "":
		why = "the server stops: " + rec.Lost
	}
	s.log.Info("keeping a sandbox for the restart", "id", e.id, "tenant", e.tenant, "saved", rec.Save != "",
		"duration", time.Since(began), "lost", rec.Lost)
	s.stopEntry(e, why)
}

// resumeAll resumes the sandboxes saved by the last stop, parallelSaves at
// a time, and registers the lost ones.
func (s *Server) resumeAll(ctx context.Context) error {
	dirs, err := os.ReadDir(s.stateRoot())
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return errors.Wrap(err, "reading the saved sandboxes")
	}
	work := make(chan record)
	var wg sync.WaitGroup
	for range parallelSaves {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range work {
				s.resume(ctx, r)
			}
		}()
	}
	for _, d := range dirs {
		dir := filepath.Join(s.stateRoot(), d.Name())
		r, err := readRecord(dir)
		switch {
		case err != nil:
			s.log.Warn("removing a saved sandbox with no record: an unfinished save, or the disk of a sandbox whose server was killed",
				"folder", dir, "err", err)
			os.RemoveAll(dir)
		case r.Lost != "":
			s.reg.add(entryOf(r))
		default:
			work <- r
		}
	}
	close(work)
	wg.Wait()
	return nil
}

// resume starts one saved sandbox, or records it lost.
func (s *Server) resume(ctx context.Context, r record) {
	began := time.Now()
	dir := s.stateDir(r.ID)
	save := filepath.Join(dir, r.Save)
	sb, err := engine.Start(ctx, s.engineConfig(engine.Config{Image: save, Network: engine.NetworkMode(r.Network),
		NetworkPolicy: (*engine.NetworkPolicy)(r.Policy)}))
	if err != nil {
		r.Save, r.Lost = "", "it could not be resumed after the server's restart: "+err.Error()
		s.log.Warn("a saved sandbox is lost", "id", r.ID, "tenant", r.Tenant, "err", err)
		if err := writeRecord(dir, r); err != nil {
			s.log.Warn("recording a lost sandbox", "id", r.ID, "err", err)
		}
		s.reg.add(entryOf(r))
		return
	}
	e := entryOf(r)
	e.sb, e.base = sb, save
	// The record goes first: a server killed from here on must not find
	// it and resume the save a second time. The save's disk stays, as the
	// running VM's backing file, until the sandbox stops; its RAM is read.
	if err := os.Remove(filepath.Join(dir, recordFile)); err != nil {
		s.log.Warn("removing a resumed sandbox's record", "id", r.ID, "err", err)
	}
	dropSavedRAM(save)
	s.reg.add(e)
	s.metrics.started(time.Since(began), string(sb.Accelerator()), false)
	s.log.Info("resumed a sandbox", "id", r.ID, "tenant", r.Tenant, "duration", time.Since(began))
}

// entryOf is the entry of a record, its idle clock started now.
func entryOf(r record) *entry {
	if r.Metadata == nil {
		r.Metadata = map[string]string{}
	}
	return &entry{id: r.ID, tenant: r.Tenant, image: r.Image, network: engine.NetworkMode(r.Network), metadata: r.Metadata,
		created: r.Created, timeout: seconds(r.Timeout), lastUsed: time.Now(), lost: r.Lost, policy: (*engine.NetworkPolicy)(r.Policy)}
}

// dropSavedRAM removes a resumed save's RAM state, named by its manifest:
// the VM has read it, and it is as large as the guest's memory.
func dropSavedRAM(save string) {
	var m struct {
		Save struct {
			State string `json:"state"`
		} `json:"save"`
	}
	raw, err := os.ReadFile(filepath.Join(save, "manifest.json"))
	if err != nil || json.Unmarshal(raw, &m) != nil || m.Save.State == "" || strings.ContainsRune(m.Save.State, filepath.Separator) {
		return
	}
	os.Remove(filepath.Join(save, m.Save.State))
}

// forget removes what the disk holds of a sandbox that is no more.
func (s *Server) forget(e *entry) {
	if e.base != "" {
		os.RemoveAll(e.base)
		os.Remove(filepath.Dir(e.base)) // only once nothing else is in it
	}
	if e.lost != "" {
		os.RemoveAll(s.stateDir(e.id))
	}
}
