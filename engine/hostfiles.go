package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/pkg/errors"
)

// File helpers that templates and saves share: QEMU's version, checksums,
// locks, and cheap change detection.

var qemuVersions sync.Map // binary path -> version line

func qemuVersion(binary string) (string, error) {
	if v, ok := qemuVersions.Load(binary); ok {
		return v.(string), nil
	}
	out, err := exec.Command(binary, "--version").Output()
	if err != nil {
		return "", errors.Wrapf(err, "asking %s its version", binary)
	}
	v := string(out)
	qemuVersions.Store(binary, v)
	return v, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// lockFile takes an exclusive flock on path, waiting until ctx ends.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
			return func() { f.Close() }, nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// fileStamp tells a file from a changed one without reading it: a write
// changes the modification time, a replacement the inode.
type fileStamp struct {
	Size      int64  `json:"size"`
	ModTimeNs int64  `json:"mtime_ns"`
	Inode     uint64 `json:"inode"`
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	st := fileStamp{Size: fi.Size(), ModTimeNs: fi.ModTime().UnixNano()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.Inode = sys.Ino
	}
	return st, nil
}
