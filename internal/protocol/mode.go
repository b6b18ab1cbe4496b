package protocol

import "io/fs"

// Modes cross the protocol (and the C ABI) as Unix permission bits, 0o7777:
// setuid 0o4000, setgid 0o2000, sticky 0o1000. Go keeps those three in
// high bits of fs.FileMode instead, so a plain conversion either way loses
// them (0o1777 became 0o777).

// UnixMode is m's permission bits with setuid, setgid and sticky.
func UnixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// FileMode is the fs.FileMode of Unix permission bits u (above 0o7777 is
// dropped).
func FileMode(u uint32) fs.FileMode {
	m := fs.FileMode(u & 0o777)
	if u&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if u&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if u&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}
