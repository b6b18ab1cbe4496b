package engine

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pkg/errors"
)

const (
	workdirPrefix = "sb-"
	lockName      = "lock"
	// A folder younger than this may be one that another start is just
	// setting up (between making it and locking it): it is left alone.
	unlockedGrace = time.Minute
)

// workdir is one sandbox's folder: overlay, console log, sockets. It holds
// an exclusive flock on its lock file while the sandbox lives, so that a
// later Start (in any process) can tell the folders of killed processes
// from live ones and remove them.
type workdir struct {
	path string
	lock *os.File
}

func newWorkdir(base string) (*workdir, error) {
	if err := ensurePrivateDir(base); err != nil {
		return nil, errors.Wrap(err, "the work folder")
	}
	sweepStale(base)
	dir, err := os.MkdirTemp(base, workdirPrefix)
	if err != nil {
		return nil, errors.Wrapf(err, "making a sandbox folder in %s", base)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err == nil {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, errors.Wrapf(err, "locking the sandbox folder %s", dir)
	}
	return &workdir{path: dir, lock: f}, nil
}

func (w *workdir) file(name string) string { return filepath.Join(w.path, name) }

// remove deletes the folder and then releases the lock.
func (w *workdir) remove() error {
	err := os.RemoveAll(w.path)
	w.lock.Close()
	return errors.Wrapf(err, "removing %s", w.path)
}

// sweepStale removes sandbox folders whose owner is gone: their lock is free.
func sweepStale(base string) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), workdirPrefix) {
			continue
		}
		dir := filepath.Join(base, e.Name())
		if info, err := e.Info(); err != nil || time.Since(info.ModTime()) < unlockedGrace {
			continue
		}
		f, err := os.Open(filepath.Join(dir, lockName))
		if err != nil {
			os.RemoveAll(dir) // old and never locked
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			os.RemoveAll(dir)
		}
		f.Close()
	}
}
