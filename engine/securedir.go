package engine

import (
	"os"
	"syscall"

	"github.com/pkg/errors"
)

// ensurePrivateDir makes dir (and its parents) if missing and checks that
// no other local user can change what is in it: it must be a folder owned
// by this user (or root), and writable by nobody else unless sticky (as
// /tmp is). A folder someone else made first at a predictable path (such as
// the default $TMPDIR/quicksand-<uid>) would otherwise let them swap the
// sockets, overlays and token files that sandboxes keep there.
func ensurePrivateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return errors.Wrapf(err, "making the folder %s", dir)
	}
	if lfi, err := os.Lstat(dir); err == nil && lfi.Mode()&os.ModeSymlink != 0 && !ownedBySelfOrRoot(lfi) {
		return errors.Errorf("%s is a symbolic link that another user owns", dir)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return errors.Wrapf(err, "checking the folder %s", dir)
	}
	switch {
	case !fi.IsDir():
		return errors.Errorf("%s is not a folder", dir)
	case !ownedBySelfOrRoot(fi):
		return errors.Errorf("%s belongs to another user (uid %d): refusing to keep sandboxes there", dir, fi.Sys().(*syscall.Stat_t).Uid)
	case fi.Mode().Perm()&0o022 != 0 && fi.Mode()&os.ModeSticky == 0:
		return errors.Errorf("%s is writable by other users (mode %v): refusing to keep sandboxes there", dir, fi.Mode().Perm())
	}
	return nil
}

func ownedBySelfOrRoot(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && (int(st.Uid) == os.Geteuid() || st.Uid == 0)
}
