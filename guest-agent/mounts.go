package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// Mounts (docs/protocol.md, "Shared folders"): the host serves a folder
// over 9P on a connection to this agent, which the guest's kernel then
// uses as the mount's transport (trans=fd). The host asks in two calls:
// PathMountConnect hands over a connection, PathMount mounts it. Nothing
// listens for the mount anywhere: its connection is one the host made,
// with the agent's token, through the port forward it already uses.

// connectionWait is how long a handed-over connection waits to be mounted.
const connectionWait = 30 * time.Second

// pendingMounts are connections handed over and not yet mounted, by id,
// and those mounted, by path.
type pendingMounts struct {
	mu    sync.Mutex
	conns map[string]*os.File
	// mounted keeps a descriptor of each mount's connection (the kernel
	// holds its own): after a revert the host's end of it is gone without
	// the guest's TCP knowing (the restored connection state is older than
	// QEMU's), and the mount's requests would wait for ever; shutting the
	// socket down fails them at once, so the mount can go.
	mounted map[string]*os.File
}

func (p *pendingMounts) keep(path string, f *os.File) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mounted == nil {
		p.mounted = map[string]*os.File{}
	}
	if old := p.mounted[path]; old != nil {
		old.Close()
	}
	p.mounted[path] = f
}

// mountedConn is the connection mounted at path (nil if none is known).
func (p *pendingMounts) mountedConn(path string) *os.File {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mounted[path]
}

func (p *pendingMounts) forget(path string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f := p.mounted[path]; f != nil {
		f.Close()
		delete(p.mounted, path)
	}
}

func (p *pendingMounts) put(id string, f *os.File) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		p.conns = map[string]*os.File{}
	}
	if _, taken := p.conns[id]; taken {
		return fmt.Errorf("mount connection %q is already waiting", id)
	}
	p.conns[id] = f
	time.AfterFunc(connectionWait, func() {
		if f := p.take(id); f != nil {
			f.Close()
		}
	})
	return nil
}

func (p *pendingMounts) take(id string) *os.File {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.conns[id]
	delete(p.conns, id)
	return f
}

// mountConnect switches the connection to 9P and holds it under ?id.
func (s *server) mountConnect(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	if id == "" || len(id) > 64 {
		writeError(w, http.StatusBadRequest, "a mount connection needs an id of 1 to 64 characters")
		return
	}
	if r.Header.Get("Upgrade") != protocol.MountUpgrade {
		writeError(w, http.StatusBadRequest, "a mount connection must ask to upgrade to "+protocol.MountUpgrade)
		return
	}
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "taking the connection: "+err.Error())
		return
	}
	defer conn.Close() // the kernel holds its own reference once mounted
	if buf.Reader.Buffered() > 0 {
		return // 9P before the switch: nothing to mount
	}
	tcp, ok := conn.(*net.TCPConn)
	if !ok {
		return // only the TCP port carries mounts
	}
	f, err := tcp.File() // a duplicate in blocking mode, as the kernel wants it
	if err != nil {
		return
	}
	if err := s.pending.put(id, f); err != nil {
		f.Close()
		return
	}
	_, _ = buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + protocol.MountUpgrade + "\r\n\r\n")
	_ = buf.Flush()
}

// mount mounts a handed-over connection at the request's path, making the
// folder first when it is missing, and keeps the connection's descriptor.
func (s *server) mount(w http.ResponseWriter, r *http.Request) {
	var req protocol.MountRequest
	if !readJSON(w, r, &req) {
		return
	}
	if err := checkPath(req.Path); err != nil {
		answerFileError(w, err)
		return
	}
	conn := s.pending.take(req.ID)
	if conn == nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("no mount connection %q is waiting", req.ID))
		return
	}
	if err := mountConnection(conn, req); err != nil {
		conn.Close()
		answerFileError(w, pathError(req.Path, err))
		return
	}
	s.pending.keep(filepath.Clean(req.Path), conn)
	writeJSON(w, http.StatusOK, struct{}{})
}

func mountConnection(conn *os.File, req protocol.MountRequest) error {
	if fi, err := os.Lstat(req.Path); err == nil && !fi.IsDir() {
		return &fileError{http.StatusBadRequest, fmt.Sprintf("%s: not a folder", req.Path)}
	}
	if err := os.MkdirAll(req.Path, 0o755); err != nil {
		return err
	}
	fd := int(conn.Fd())
	// access=any: one attach serves every guest user; the host checks what
	// its own user may do. cache=mmap: no caching beyond what mmap needs,
	// so the guest sees the host's changes at once.
	opts := fmt.Sprintf("trans=fd,rfdno=%d,wfdno=%d,version=9p2000.L,msize=%d,access=any,cache=mmap", fd, fd, protocol.MountMessageSize)
	var flags uintptr = syscall.MS_NOSUID | syscall.MS_NODEV
	if req.ReadOnly {
		flags |= syscall.MS_RDONLY
	}
	if err := syscall.Mount("quicksand", req.Path, "9p", flags, opts); err != nil {
		if errors.Is(err, syscall.ENODEV) {
			return &fileError{http.StatusBadRequest, "this image's kernel cannot mount 9p (rebuild the image: the 9p modules load at boot)"}
		}
		return err
	}
	return nil
}

// unmount unmounts a shared folder. A folder in use (a process has it as
// its working folder, or a file open in it) is cut off anyway: the host is
// about to stop serving it, and its users get errors from then on.
func (s *server) unmount(w http.ResponseWriter, r *http.Request) {
	var req protocol.UnmountRequest
	if !readJSON(w, r, &req) {
		return
	}
	if err := checkPath(req.Path); err != nil {
		answerFileError(w, err)
		return
	}
	path := filepath.Clean(req.Path)
	if conn := s.pending.mountedConn(path); req.Force && conn != nil {
		_ = syscall.Shutdown(int(conn.Fd()), syscall.SHUT_RDWR)
	}
	err := syscall.Unmount(path, 0)
	if errors.Is(err, syscall.EBUSY) {
		_ = syscall.Unmount(path, syscall.MNT_FORCE)
		err = syscall.Unmount(path, syscall.MNT_DETACH)
	}
	if err != nil && !errors.Is(err, syscall.EINVAL) { // EINVAL: not mounted
		answerFileError(w, pathError(req.Path, err))
		return
	}
	s.pending.forget(path)
	writeJSON(w, http.StatusOK, struct{}{})
}
