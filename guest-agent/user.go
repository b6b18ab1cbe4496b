package main

import (
	"fmt"
	"os/user"
	"strconv"
	"syscall"
)

// runAs is a guest account a command runs as.
type runAs struct {
	cred *syscall.Credential
	// env is HOME, USER and LOGNAME for the account, overriding the
	// agent's own (root's) and overridden by the request's env.
	env []string
	// home is where the command starts when the request names no cwd (as
	// a login would, and as Quicksand's agent does).
	home string
}

// lookupUser finds a guest user by name or numeric uid in the guest's
// account files, with its primary and supplementary groups. A user that
// does not exist is the caller's error: running as root instead would
// hand root to someone who asked not to have it.
func lookupUser(name string) (*runAs, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if _, isNum := strconv.Atoi(name); isNum == nil {
			u, err = user.LookupId(name)
		}
	}
	if err != nil {
		return nil, &startError{msg: fmt.Sprintf("user %q: no such user in the guest", name), refused: true}
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, &startError{msg: fmt.Sprintf("user %q: unusable uid %q or gid %q", name, u.Uid, u.Gid), refused: true}
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.ParseUint(id, 10, 32); err == nil {
				cred.Groups = append(cred.Groups, uint32(g))
			}
		}
	}
	if len(cred.Groups) == 0 {
		cred.Groups = []uint32{uint32(gid)} // never keep the agent's own groups
	}
	home := u.HomeDir
	if home == "" {
		home = "/"
	}
	return &runAs{cred: cred, home: home, env: []string{"HOME=" + home, "USER=" + u.Username, "LOGNAME=" + u.Username}}, nil
}
