package main

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// openPTY opens a new pseudo-terminal of the given size: the master, which
// the agent reads and writes, and the terminal the process gets.
func openPTY(size protocol.TerminalSize) (master, tty *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	fail := func(what string, err error) (*os.File, *os.File, error) {
		master.Close()
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	var n uint32
	if err := ioctl(master, syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); err != nil {
		return fail("numbering the terminal", err)
	}
	unlock := int32(0)
	if err := ioctl(master, syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); err != nil {
		return fail("unlocking the terminal", err)
	}
	if err := setTerminalSize(master, size); err != nil {
		return fail("sizing the terminal", err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return fail("opening the terminal", err)
	}
	return master, tty, nil
}

func setTerminalSize(f *os.File, size protocol.TerminalSize) error {
	ws := struct{ rows, cols, x, y uint16 }{uint16(size.Rows), uint16(size.Cols), 0, 0}
	return ioctl(f, syscall.TIOCSWINSZ, uintptr(unsafe.Pointer(&ws)))
}

func ioctl(f *os.File, req uint, arg uintptr) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, uintptr(req), arg)
	}); err != nil {
		return err
	}
	if errno != 0 {
		return errno
	}
	return nil
}

// checkTerminalSize accepts what a terminal can be.
func checkTerminalSize(size protocol.TerminalSize) error {
	if size.Rows < 1 || size.Rows > 65535 || size.Cols < 1 || size.Cols > 65535 {
		return fmt.Errorf("a terminal of %d rows and %d columns: each must be 1 to 65535", size.Rows, size.Cols)
	}
	return nil
}
