package engine

import (
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/pkg/errors"
)

const (
	workdirPattern = "sb-*"
	lockName       = "lock"
)

// unlockedGrace: a folder younger than this may be one that another
// process is just setting up (between making it and locking it, a matter
// of microseconds): it is left alone. A variable for the tests.
var unlockedGrace = 10 * time.Second

// lockedDir is a folder that its maker holds an exclusive flock on (on its
// lock file) for as long as it works in it: a sandbox's folder (overlay,
// console log, sockets), a template being built, a save being written.
// Whoever comes later (in any process) can so tell the folders of killed
// processes from live ones and remove them (sweepStale).
type lockedDir struct {
	path string
	lock *os.File
}

// newWorkdir makes a sandbox's folder in base, first removing those that
// killed processes left. Start has checked base (ensurePrivateDir) before
// anything, the accelerator probe's cache included, was put there.
func newWorkdir(log *slog.Logger, base string) (*lockedDir, error) {
	sweepStale(log, base, workdirPattern)
	return makeLockedDir(base, workdirPattern)
}

// makeLockedDir makes a new owner-only folder in base named after pattern
// (as os.MkdirTemp: its last '*' is replaced by something unique), locked.
func makeLockedDir(base, pattern string) (*lockedDir, error) {
	dir, err := os.MkdirTemp(base, pattern)
	if err != nil {
		return nil, errors.Wrapf(err, "making a folder in %s", base)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err == nil {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, errors.Wrapf(err, "locking the folder %s", dir)
	}
	return &lockedDir{path: dir, lock: f}, nil
}

func (w *lockedDir) file(name string) string { return filepath.Join(w.path, name) }

// remove deletes the folder and then releases the lock.
func (w *lockedDir) remove() error {
	err := os.RemoveAll(w.path)
	w.lock.Close()
	return errors.Wrapf(err, "removing %s", w.path)
}

// renameTo moves the finished folder to its final name, without its lock
// file, and releases the lock. Removing the lock file touches the folder,
// so a sweep in the moment before the rename sees a young folder and
// leaves it.
func (w *lockedDir) renameTo(final string) error {
	os.Remove(w.file(lockName))
	err := os.Rename(w.path, final)
	w.lock.Close()
	return err
}

// sweepStale removes the folders in base matching pattern whose owner is
// gone: their lock is free, or they have none and are older than
// unlockedGrace.
func sweepStale(log *slog.Logger, base, pattern string) {
	dirs, _ := filepath.Glob(filepath.Join(base, pattern))
	for _, dir := range dirs {
		info, err := os.Lstat(dir)
		if err != nil || !info.IsDir() || time.Since(info.ModTime()) < unlockedGrace {
			continue
		}
		f, err := os.Open(filepath.Join(dir, lockName))
		if err != nil {
			log.Info("removing a stale folder (old, never locked)", "folder", dir)
			os.RemoveAll(dir)
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			log.Info("removing a stale folder (its process is gone)", "folder", dir)
			os.RemoveAll(dir)
		}
		f.Close()
	}
}
