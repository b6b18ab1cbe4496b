package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Each command runs in a cgroup (v2) of its own, under commandsCgroup. A
// process can leave its process group (setsid) and its parent (a double
// fork), but not its cgroup: a timeout, a cancellation or a dropped
// connection kills the whole cgroup (cgroup.kill), whatever the command
// started, wherever it went. The cgroup also caps the command's processes
// (pids.max), so that a fork bomb cannot take every process slot from the
// agent and the commands after it; and with the cpu controller, all the
// commands together weigh as much as the agent (which stays in the root
// cgroup), and each command as much as any other, so a command that spins
// (a fork bomb left running) cannot starve the agent or the next command.
//
// A command that ends by itself keeps what it left running in the
// background (a server it started, say): its cgroup stays until empty and
// is removed by a later sweep. Empty cgroups are kept for the next
// commands: making and removing one per command cost about a fifth of an
// execute's round trip under TCG.
const (
	cgroupRoot     = "/sys/fs/cgroup"
	commandsCgroup = cgroupRoot + "/quicksand-commands"
	// Processes (and threads) one command may have at once: scaled to the
	// memory the guest's kernel reports (MemTotal; a 512 MiB guest: 914),
	// within these bounds.
	minCommandPids = 256
	maxCommandPids = 8192
)

// cgroups makes and kills the commands' cgroups. A nil *cgroups (an agent
// on a host, in tests, or a guest without cgroup v2) does nothing, and the
// process group is all that is killed.
type cgroups struct {
	pidsMax int
	next    atomic.Uint64
	mu      sync.Mutex
	free    []*commandCgroup // empty, ready for a command
	// busy are the folders of the cgroups handed to commands and not yet
	// released: empty until the command is cloned into it, and a sweep
	// must not take one away then (the clone failed with ENOENT).
	busy  map[string]bool
	ended int // commands since the last sweep
}

// sweepEvery is how many commands pass between sweeps of the cgroups left
// holding background processes (removed once those ended).
const sweepEvery = 64

// setupCgroups mounts cgroup v2 if needed and makes the commands' parent
// cgroup with the pids controller. It says why on stderr and returns nil if
// it cannot.
func setupCgroups() *cgroups {
	fail := func(err error) *cgroups {
		fmt.Fprintf(os.Stderr, "quicksand-agent: commands run without cgroups: %v\n", err)
		return nil
	}
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err != nil {
		if err := syscall.Mount("cgroup2", cgroupRoot, "cgroup2", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
			return fail(fmt.Errorf("mounting cgroup2: %w", err))
		}
	}
	if err := os.Mkdir(commandsCgroup, 0o755); err != nil && !os.IsExist(err) {
		return fail(err)
	}
	for _, dir := range []string{cgroupRoot, commandsCgroup} {
		control := filepath.Join(dir, "cgroup.subtree_control")
		if err := os.WriteFile(control, []byte("+pids"), 0); err != nil {
			return fail(fmt.Errorf("enabling the pids controller in %s: %w", dir, err))
		}
		if err := os.WriteFile(control, []byte("+cpu"), 0); err != nil {
			fmt.Fprintf(os.Stderr, "quicksand-agent: commands share the CPU without weights: %v\n", err)
		}
	}
	pids := int(memTotal() >> 19) // one per 512 KiB of guest memory
	return &cgroups{pidsMax: min(max(pids, minCommandPids), maxCommandPids), busy: map[string]bool{}}
}

// commandCgroup is one command's cgroup.
type commandCgroup struct {
	owner *cgroups
	dir   string
	fd    int // the folder, open: commands are cloned into the cgroup by it
	// events is its cgroup.events, open: read once per command, so one
	// system call rather than three.
	events *os.File
	// mu and released keep a late kill (a timer that fired as the command
	// ended) off a cgroup already handed to another command.
	mu       sync.Mutex
	released bool
}

// create gives a command an empty cgroup: a kept one, or a new one. It
// returns nil (and the command runs in the agent's cgroup) if it cannot.
func (cg *cgroups) create() *commandCgroup {
	if cg == nil {
		return nil
	}
	cg.mu.Lock()
	if n := len(cg.free); n > 0 {
		kept := cg.free[n-1]
		cg.free = cg.free[:n-1]
		cg.busy[kept.dir] = true
		cg.mu.Unlock()
		return &commandCgroup{owner: cg, dir: kept.dir, fd: kept.fd, events: kept.events}
	}
	// Busy before it exists: a sweep that lists it must already skip it.
	dir := filepath.Join(commandsCgroup, "c"+strconv.FormatUint(cg.next.Add(1), 10))
	cg.busy[dir] = true
	cg.mu.Unlock()
	if c := cg.make(dir); c != nil {
		return c
	}
	cg.mu.Lock()
	delete(cg.busy, dir)
	cg.mu.Unlock()
	return nil
}

// make makes the cgroup folder dir for a command, or returns nil.
func (cg *cgroups) make(dir string) *commandCgroup {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil
	}
	_ = os.WriteFile(filepath.Join(dir, "pids.max"), []byte(strconv.Itoa(cg.pidsMax)), 0)
	fd, err := syscall.Open(dir, syscall.O_DIRECTORY|syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		_ = os.Remove(dir)
		return nil
	}
	events, err := os.Open(filepath.Join(dir, "cgroup.events"))
	if err != nil {
		syscall.Close(fd)
		_ = os.Remove(dir)
		return nil
	}
	return &commandCgroup{owner: cg, dir: dir, fd: fd, events: events}
}

// sweep removes the cgroups that commands left holding background
// processes, once those ended (one that still has some cannot be removed
// and stays). Kept cgroups and those of running commands are not touched.
func (cg *cgroups) sweep() {
	entries, err := os.ReadDir(commandsCgroup)
	if err != nil {
		return
	}
	cg.mu.Lock()
	defer cg.mu.Unlock() // held throughout: no cgroup is handed out meanwhile
	kept := map[string]bool{}
	for _, c := range cg.free {
		kept[c.dir] = true
	}
	for _, e := range entries {
		dir := filepath.Join(commandsCgroup, e.Name())
		if e.IsDir() && strings.HasPrefix(e.Name(), "c") && !kept[dir] && !cg.busy[dir] {
			_ = syscall.Rmdir(dir)
		}
	}
}

// kill kills every process in the cgroup and waits (briefly) until they
// are gone; the empty cgroup is kept for another command.
func (c *commandCgroup) kill() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.released {
		return
	}
	_ = os.WriteFile(filepath.Join(c.dir, "cgroup.kill"), []byte("1"), 0)
	for i := 0; i < 100 && c.populated(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	c.releaseLocked()
}

// release hands the cgroup back when its command is over: kept for another
// command if empty, else left to its background processes (and a later
// sweep). Only the first call counts.
func (c *commandCgroup) release() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.releaseLocked()
}

func (c *commandCgroup) releaseLocked() {
	if c.released {
		return
	}
	c.released = true
	cg := c.owner
	populated := c.populated()
	// Busy to free in one step: a sweep between the two (another
	// command's release) would find the empty cgroup in neither and
	// remove it, and the next command, cloned into the removed cgroup by
	// its descriptor, would fail with ENOENT (seen with 50 clients at once).
	cg.mu.Lock()
	delete(cg.busy, c.dir)
	if !populated {
		cg.free = append(cg.free, c)
	}
	cg.mu.Unlock()
	if populated {
		syscall.Close(c.fd)
		c.events.Close()
	}
	cg.mu.Lock()
	cg.ended++
	sweep := cg.ended%sweepEvery == 0
	cg.mu.Unlock()
	if sweep {
		cg.sweep()
	}
}

func (c *commandCgroup) populated() bool {
	var buf [128]byte
	n, _ := c.events.ReadAt(buf[:], 0)
	return strings.Contains(string(buf[:n]), "populated 1")
}
