package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// terminal is the local terminal in raw mode: every key goes to the guest
// as typed (^C and ^D included), nothing is echoed here; restore puts it
// back as it was.
type terminal struct {
	fd    int
	saved *unix.Termios
}

// makeRaw puts f's terminal in raw mode; nil when f is not a terminal.
func makeRaw(f *os.File) (*terminal, error) {
	fd := int(f.Fd())
	saved, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, nil // not a terminal: nothing to do
	}
	raw := *saved
	// cfmakeraw(3)
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, err
	}
	return &terminal{fd: fd, saved: saved}, nil
}

func (t *terminal) restore() {
	if t != nil {
		_ = unix.IoctlSetTermios(t.fd, unix.TCSETS, t.saved)
	}
}

// terminalSize is f's window size, or 24x80 when f is not a terminal.
func terminalSize(f *os.File) (rows, cols int) {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Row == 0 || ws.Col == 0 {
		return 24, 80
	}
	return int(ws.Row), int(ws.Col)
}
