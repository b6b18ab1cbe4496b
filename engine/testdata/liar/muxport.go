package main

import (
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/quicksand-go/quicksand/internal/mux"
	"github.com/quicksand-go/quicksand/internal/protocol"
)

// serveMux serves the liar on the agent's mux port as the agent would (the
// engine's calls go there), its first words telling the engine that the
// server it talked to is gone; or, as the lie "mux-junk", sends junk on the
// port instead, for ever.
func (l *liar) serveMux(srv *http.Server, port *os.File) {
	if l.name() != "mux-junk" {
		err := srv.Serve(mux.Server(mux.NewHostPort(port, protocol.MuxPortName)))
		fmt.Printf("liar: serving the mux port: %v\n", err)
		return
	}
	go func() {
		buf := make([]byte, 64<<10)
		for {
			if _, err := port.Read(buf); err != nil {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}()
	junk := []byte("QM\x03\x00\x00\x00\x00\x01\xff\xff\xff\xffnot a frame")
	for {
		port.Write(junk)
		time.Sleep(20 * time.Millisecond)
	}
}
