package mux

import (
	"fmt"
	"io"
	"os"
	"time"
)

// HostPort is the guest's end of a virtio-serial port, for Server: the
// port says end of file at once, again and again, while no host end is
// connected; HostPort's reads wait instead, looking again after a pause
// that grows to 50 ms, so that the server reads on through engines coming
// and going. A VM frozen while its port was connected resumes in a read
// that simply goes on.
type HostPort struct {
	f      *os.File
	name   string
	warned bool
}

// NewHostPort wraps an open port, name for messages.
func NewHostPort(f *os.File, name string) *HostPort { return &HostPort{f: f, name: name} }

func (p *HostPort) Read(b []byte) (int, error) {
	pause := time.Millisecond
	for {
		n, err := p.f.Read(b)
		if n > 0 {
			return n, nil
		}
		if err != nil && err != io.EOF && !p.warned {
			p.warned = true
			fmt.Fprintf(os.Stderr, "reading %s: %v (retrying)\n", p.name, err)
		}
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
}

func (p *HostPort) Write(b []byte) (int, error) { return p.f.Write(b) }
