package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// takeOver puts the liar in the real agent's place on port, as root in the
// guest can. The agent's server is a child of its init (PID 1,
// guest-agent/init.go), which restarts it 100 ms after it dies; so rather
// than kill it and race the restart for the port, the liar stops it
// (SIGSTOP: init waits for exits only, so it does not restart a stopped
// server), takes a copy of its listening socket (pidfd_getfd) and cuts the
// connections it had (the host's kept-alive ones), so that every request
// from now on reaches the liar. It takes a copy of the agent's mux port
// too (muxPort, nil if it had none), which the stopped agent no longer
// reads.
func takeOver(port int) (ln net.Listener, muxPort *os.File, err error) {
	pid, err := agentServer()
	if err != nil {
		return nil, nil, err
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	if err := unix.Kill(pid, unix.SIGSTOP); err != nil {
		return nil, nil, fmt.Errorf("stopping the agent server %d: %w", pid, err)
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, nil, err
	}
	for _, e := range fds {
		target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
		n, _ := strconv.Atoi(e.Name())
		if port, ok := strings.CutPrefix(target, "/dev/"); ok && muxPort == nil {
			name, _ := os.ReadFile("/sys/class/virtio-ports/" + port + "/name")
			if strings.TrimSpace(string(name)) == protocol.MuxPortName {
				fd, err := unix.PidfdGetfd(pidfd, n, 0)
				if err != nil {
					return nil, nil, fmt.Errorf("pidfd_getfd %d of %d: %w", n, pid, err)
				}
				muxPort = os.NewFile(uintptr(fd), target)
			}
			continue
		}
		if !strings.HasPrefix(target, "socket:") {
			continue
		}
		fd, err := unix.PidfdGetfd(pidfd, n, 0)
		if err != nil {
			return nil, nil, fmt.Errorf("pidfd_getfd %d of %d: %w", n, pid, err)
		}
		if localPort(fd) != port {
			unix.Close(fd)
			continue
		}
		if listening, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); listening == 1 && ln == nil {
			f := os.NewFile(uintptr(fd), "agent-listener")
			ln, err = net.FileListener(f) // a copy of its own
			f.Close()
			if err != nil {
				return nil, nil, err
			}
			continue
		}
		unix.Shutdown(fd, unix.SHUT_RDWR) // a connection the host kept
		unix.Close(fd)
	}
	if ln == nil {
		return nil, nil, fmt.Errorf("the agent server %d has no socket listening on port %d", pid, port)
	}
	return ln, muxPort, nil
}

// agentServer is the pid of the agent's server: init's child that runs
// init's own binary.
func agentServer() (int, error) {
	initExe, err := os.Readlink("/proc/1/exe")
	if err != nil {
		return 0, err
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		pid, _ := strconv.Atoi(filepath.Base(p))
		if pid == 1 || pid == os.Getpid() {
			continue
		}
		stat, err := os.ReadFile(p + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold anything but ')'.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) < 2 || fields[1] != "1" {
			continue
		}
		if exe, _ := os.Readlink(p + "/exe"); exe == initExe {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no agent server (a child of init running %s)", initExe)
}

// localPort is the local TCP port of the socket fd, 0 if it has none.
func localPort(fd int) int {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return 0
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return a.Port
	case *unix.SockaddrInet6:
		return a.Port
	}
	return 0
}
