package share

import "golang.org/x/sys/unix"

// What the guest may do to a host file's owner and mode. Root in the guest
// is not root on the host: whatever it asks, a file in a share never gets
// setuid or setgid from it (a setuid file there is a program any local
// user of the host runs as its owner, root when the caller runs as root),
// never changes owner (see setAttr), and is never a device (see mknod).

// setID is setuid and setgid.
const setID = unix.S_ISUID | unix.S_ISGID

// guestMode is the part of a mode from the guest that the host applies:
// the permissions and the sticky bit, never setuid or setgid (a folder's
// setgid neither: it would hand its group, and its setgid, on to all that
// is made in it).
func guestMode(mode uint32) uint32 { return mode & 0o7777 &^ setID }

// chmodExact gives the file fd refers to (an O_PATH descriptor, reached
// through /proc, which chmod does not open) the guest's mode, without
// setuid or setgid.
func chmodExact(fd int, mode uint32) error {
	return unix.Fchmodat(unix.AT_FDCWD, procPath(fd), guestMode(mode), 0)
}

// dropSetID removes setuid and setgid from a regular file the guest is
// about to write or truncate, as Linux does for a writer without
// CAP_FSETID: a caller running as root has it, and the kernel would keep
// the bits, so guest root could put its own program in a setuid file the
// host keeps in the share.
func dropSetID(fd int) error {
	st, err := fstat(fd)
	if err != nil {
		return err
	}
	if st.Mode&setID == 0 {
		return nil
	}
	return chmodExact(fd, st.Mode)
}
