package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// /create_user and /delete_user manage guest accounts the way Quicksand's
// agent does: by editing /etc/passwd, /etc/group and /etc/shadow directly,
// so that they work on any image whatever its tools, with ids from
// firstUID up and a home folder of 0700.

const (
	firstUID = 1000
	lastUID  = 59999
)

// accountFiles are edited under this lock: requests run concurrently, and
// two edits at once would lose one.
var accountFiles sync.Mutex

// etcDir is the folder of the account files.
const etcDir = "/etc"

// validUserName keeps names to a portable subset that cannot break the
// colon-separated account files.
func validUserName(name string) bool {
	if name == "" || len(name) > 32 {
		return false
	}
	for i, b := range []byte(name) {
		switch {
		case b >= 'a' && b <= 'z', b == '_':
		case (b >= '0' && b <= '9' || b == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

func (s *server) createUser(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeUserRequest(w, r)
	if !ok {
		return
	}
	created, err := createAccount(req.Name)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, created)
}

func (s *server) deleteUser(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeUserRequest(w, r)
	if !ok {
		return
	}
	if err := deleteAccount(req.Name, req.RemoveHome); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, protocol.UserDeleted{Removed: true})
}

func decodeUserRequest(w http.ResponseWriter, r *http.Request) (protocol.UserRequest, bool) {
	var req protocol.UserRequest
	if !readJSON(w, r, &req) {
		return req, false
	}
	if !validUserName(req.Name) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid user name %q: 1 to 32 of a-z, 0-9, _ and -, not starting with a digit or -", req.Name))
		return req, false
	}
	return req, true
}

// accountLine finds name's line in an account file.
func accountLine(file, name string) ([]string, bool) {
	raw, _ := os.ReadFile(filepath.Join(etcDir, file))
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Split(line, ":"); len(f) >= 7 && f[0] == name {
			return f, true
		}
	}
	return nil, false
}

// nextFreeID is one past the highest id in use in the range, in either
// passwd or group, so that the user's group can share its number.
func nextFreeID() int {
	next := firstUID
	for _, file := range []string{"passwd", "group"} {
		raw, _ := os.ReadFile(filepath.Join(etcDir, file))
		for _, line := range strings.Split(string(raw), "\n") {
			f := strings.Split(line, ":")
			if len(f) < 3 {
				continue
			}
			if id, err := strconv.Atoi(f[2]); err == nil && id >= firstUID && id <= lastUID && id >= next {
				next = id + 1
			}
		}
	}
	return next
}

func appendLine(file, line string) error {
	f, err := os.OpenFile(filepath.Join(etcDir, file), os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(line + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeLines rewrites file without name's line, through a temporary file
// renamed over it: a crash leaves the old file or the new one, never half.
func removeLines(file, name string) error {
	path := filepath.Join(etcDir, file)
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	var kept []string
	for _, line := range strings.SplitAfter(string(raw), "\n") {
		if !strings.HasPrefix(line, name+":") {
			kept = append(kept, line)
		}
	}
	tmp := path + ".quicksand-tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(kept, "")), fi.Mode().Perm()); err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		_ = os.Chown(tmp, int(st.Uid), int(st.Gid)) // /etc/shadow is root:shadow
	}
	return os.Rename(tmp, path)
}

func createAccount(name string) (protocol.UserCreated, error) {
	accountFiles.Lock()
	defer accountFiles.Unlock()
	var none protocol.UserCreated
	if _, exists := accountLine("passwd", name); exists {
		return none, fmt.Errorf("user %q already exists", name)
	}
	id := nextFreeID()
	if id > lastUID {
		return none, fmt.Errorf("no free uid left for %q", name)
	}
	home := "/home/" + name
	steps := []func() error{
		func() error { return appendLine("group", fmt.Sprintf("%s:x:%d:", name, id)) },
		func() error { return appendLine("passwd", fmt.Sprintf("%s:x:%d:%d::%s:/bin/sh", name, id, id, home)) },
		func() error {
			if _, err := os.Stat(filepath.Join(etcDir, "shadow")); err != nil {
				return nil // no shadow file on this image: nothing to lock
			}
			return appendLine("shadow", name+":!::0:99999:7:::") // no password: never logs in by one
		},
		func() error { return os.MkdirAll(home, 0o700) },
		func() error { return os.Chown(home, id, id) },
		func() error { return os.Chmod(home, 0o700) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return none, fmt.Errorf("creating user %q: %v", name, err)
		}
	}
	return protocol.UserCreated{UID: id, GID: id, Home: home}, nil
}

func deleteAccount(name string, removeHome bool) error {
	accountFiles.Lock()
	defer accountFiles.Unlock()
	f, exists := accountLine("passwd", name)
	if !exists {
		return fmt.Errorf("no such user: %q", name)
	}
	uid, err := strconv.Atoi(f[2])
	if err != nil || uid == 0 {
		return fmt.Errorf("user %q has uid %q: refusing to delete it", name, f[2])
	}
	killProcessesOf(uid)
	for _, file := range []string{"passwd", "group", "shadow"} {
		if err := removeLines(file, name); err != nil {
			return fmt.Errorf("deleting user %q from %s: %v", name, file, err)
		}
	}
	if removeHome && f[5] != "" && f[5] != "/" {
		if err := os.RemoveAll(f[5]); err != nil {
			return fmt.Errorf("removing %q's home %s: %v", name, f[5], err)
		}
	}
	return nil
}

// killProcessesOf kills every process running as uid (a /proc/<pid>
// folder belongs to the process's real uid).
func killProcessesOf(uid int) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if fi, err := os.Stat("/proc/" + e.Name()); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == uid {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}
