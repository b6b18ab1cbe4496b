package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// File operations (docs/protocol.md, "Files"). A file's bytes travel as the
// raw body of the request or answer (chunked HTTP): nothing holds a whole
// file in memory, on either side. What is written goes to a temporary name
// beside the final one and is renamed into place once complete, so that a
// transfer that fails halfway leaves nothing under the final name.

// fileError is a failed file operation: its status and what to say.
type fileError struct {
	status int
	msg    string
}

func (e *fileError) Error() string { return e.msg }

// pathError describes err for path, with the status that fits it.
func pathError(path string, err error) error {
	var fe *fileError
	if errors.As(err, &fe) {
		return fe
	}
	status := http.StatusBadRequest
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		status = http.StatusInsufficientStorage
	case errors.Is(err, fs.ErrNotExist):
		status = http.StatusNotFound
	case errors.Is(err, fs.ErrPermission):
		status = http.StatusForbidden
	}
	return &fileError{status, fmt.Sprintf("%s: %v", path, unwrapPathError(err))}
}

func answerFileError(w http.ResponseWriter, err error) {
	var fe *fileError
	if !errors.As(err, &fe) {
		fe = &fileError{http.StatusInternalServerError, err.Error()}
	}
	writeError(w, fe.status, fe.msg)
}

// checkPath accepts absolute paths without NUL bytes.
func checkPath(p string) error {
	switch {
	case p == "":
		return &fileError{http.StatusBadRequest, "a path is required"}
	case strings.IndexByte(p, 0) >= 0:
		return &fileError{http.StatusBadRequest, fmt.Sprintf("path %q contains a NUL byte", p)}
	case !filepath.IsAbs(p):
		return &fileError{http.StatusBadRequest, fmt.Sprintf("path %q is not absolute", p)}
	}
	return nil
}

// asUser runs fn with the file-system identity of a guest user (none: the
// agent's, root): its permissions apply and what fn creates belongs to it.
// setfsuid and setfsgid change only the calling thread, which fn keeps.
func asUser(name string, fn func() error) error {
	if name == "" {
		return fn()
	}
	as, err := lookupUser(name)
	if err != nil {
		return &fileError{http.StatusBadRequest, err.Error()}
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	syscall.Setfsgid(int(as.cred.Gid))
	syscall.Setfsuid(int(as.cred.Uid))
	defer func() {
		syscall.Setfsuid(0)
		syscall.Setfsgid(0)
	}()
	return fn()
}

// writeFile takes the body as the file at ?path, with ?mode (octal,
// default 644), as ?user.
func (s *server) writeFile(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	path := q.Get("path")
	mode, err := parseMode(q.Get("mode"), 0o644)
	if err == nil {
		err = checkPath(path)
	}
	var n int64
	if err == nil {
		err = asUser(q.Get("user"), func() error {
			n, err = writeAtomically(path, mode, r.Body)
			return err
		})
	}
	if err != nil {
		answerFileError(w, pathError(path, err))
		return
	}
	writeJSON(w, http.StatusOK, protocol.FileWritten{Bytes: n})
}

func parseMode(s string, def fs.FileMode) (fs.FileMode, error) {
	if s == "" {
		return def, nil
	}
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o7777 {
		return 0, &fileError{http.StatusBadRequest, fmt.Sprintf("mode %q is not octal permission bits", s)}
	}
	return protocol.FileMode(uint32(m)), nil
}

// writeAtomically writes r to a temporary file beside path and renames it
// to path once all of it is written and synced.
func writeAtomically(path string, mode fs.FileMode, r io.Reader) (int64, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return 0, &fileError{http.StatusBadRequest, fmt.Sprintf("%s is a folder", path)}
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".quicksand-*")
	if err != nil {
		return 0, err
	}
	tmp := f.Name()
	n, err := io.Copy(f, r)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, err
	}
	return n, nil
}

// readFile answers with the bytes of the file at ?path, read as ?user.
func (s *server) readFile(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	path := q.Get("path")
	err := checkPath(path)
	if err == nil {
		err = asUser(q.Get("user"), func() error {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				return err
			}
			if !fi.Mode().IsRegular() {
				return &fileError{http.StatusBadRequest, fmt.Sprintf("%s is not a file", path)}
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
			w.WriteHeader(http.StatusOK)
			_, err = io.Copy(w, f) // a failure now can only cut the answer short
			return nil
		})
	}
	if err != nil {
		answerFileError(w, pathError(path, err))
	}
}

// fileOp does one of the small operations of protocol.FileOp.
func (s *server) fileOp(w http.ResponseWriter, r *http.Request) {
	var op protocol.FileOp
	if !readJSON(w, r, &op) {
		return
	}
	var res protocol.FileOpResult
	err := checkPath(op.Path)
	if err == nil && op.Op == "rename" {
		err = checkPath(op.Dest)
	}
	if err == nil {
		err = asUser(op.User, func() (err error) {
			res, err = doFileOp(op)
			return err
		})
	}
	if err != nil {
		answerFileError(w, pathError(op.Path, err))
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func doFileOp(op protocol.FileOp) (protocol.FileOpResult, error) {
	var res protocol.FileOpResult
	switch op.Op {
	case "stat":
		fi, err := os.Lstat(op.Path)
		if errors.Is(err, fs.ErrNotExist) {
			return res, nil // no info: it does not exist
		}
		if err != nil {
			return res, err
		}
		info := describe(op.Path, fi)
		res.Info = &info
	case "list":
		entries, err := os.ReadDir(op.Path)
		if err != nil {
			return res, err
		}
		res.Entries = []protocol.FileInfo{}
		for _, e := range entries {
			full := filepath.Join(op.Path, e.Name())
			if fi, err := os.Lstat(full); err == nil {
				res.Entries = append(res.Entries, describe(full, fi))
			}
		}
	case "mkdir":
		return res, makeDir(op)
	case "remove":
		if op.Path == "/" {
			return res, &fileError{http.StatusBadRequest, "refusing to remove /"}
		}
		if op.Recursive {
			if _, err := os.Lstat(op.Path); err != nil {
				return res, err
			}
			return res, os.RemoveAll(op.Path)
		}
		return res, os.Remove(op.Path)
	case "rename":
		return res, os.Rename(op.Path, op.Dest)
	default:
		return res, &fileError{http.StatusBadRequest, fmt.Sprintf("op %q is not one of stat, list, mkdir, remove, rename", op.Op)}
	}
	return res, nil
}

// makeDir makes op.Path with op.Mode (default 0755) exactly: mkdir(2)
// takes the umask off (0o1777 became 0755), so the mode is set again
// once the folder is there. An existing folder (with op.Parents) keeps its
// mode; missing parents get the default, less the umask, as mkdir -p.
func makeDir(op protocol.FileOp) error {
	mode := fs.FileMode(0o755)
	if op.Mode != 0 {
		mode = protocol.FileMode(op.Mode)
	}
	if op.Parents {
		if fi, err := os.Stat(op.Path); err == nil && fi.IsDir() {
			return nil
		}
		if err := os.MkdirAll(filepath.Dir(op.Path), 0o755); err != nil {
			return err
		}
	}
	if err := os.Mkdir(op.Path, mode); err != nil {
		return err
	}
	return os.Chmod(op.Path, mode)
}

// describe turns a Lstat into the protocol's FileInfo.
func describe(path string, fi fs.FileInfo) protocol.FileInfo {
	info := protocol.FileInfo{Name: fi.Name(), Size: fi.Size(), Mode: protocol.UnixMode(fi.Mode()), MtimeNs: fi.ModTime().UnixNano()}
	switch {
	case fi.Mode().IsRegular():
		info.Type = "file"
	case fi.IsDir():
		info.Type = "dir"
	case fi.Mode()&fs.ModeSymlink != 0:
		info.Type = "symlink"
		info.Target, _ = os.Readlink(path)
	default:
		info.Type = "other"
	}
	return info
}
