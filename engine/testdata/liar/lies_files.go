package main

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// Lies about files: the answer to a read (GET /files/read: the file's
// bytes as the body, its size as Content-Length) and to the small
// operations (POST /files/op: JSON; the real ones are in
// guest-agent/files.go).
func init() {
	zeros := make([]byte, 64<<10)
	// A file without end, of no announced size (a chunked body).
	lies["read-endless"] = lie{protocol.PathFileRead, func(w http.ResponseWriter, _ *http.Request, _ []string) {
		w.Header().Set("Content-Type", "application/octet-stream")
		for {
			if _, err := w.Write(zeros); err != nil {
				return // the host went away
			}
		}
	}}
	// A size of a petabyte, and bytes for as long as the host reads.
	lies["read-huge"] = lie{protocol.PathFileRead, func(w http.ResponseWriter, _ *http.Request, _ []string) {
		w.Header().Set("Content-Length", fmt.Sprint(int64(1)<<50))
		for {
			if _, err := w.Write(zeros); err != nil {
				return
			}
		}
	}}
	// A size of 1 MiB, and 1,000 bytes, then the end of the connection.
	lies["read-short"] = lie{protocol.PathFileRead, func(w http.ResponseWriter, _ *http.Request, _ []string) {
		w.Header().Set("Content-Length", fmt.Sprint(1<<20))
		w.Write(zeros[:1000])
	}}
	// A size of 10 and 100,000 bytes, written on the raw connection (the
	// server would stop at the announced size): the rest lies in wait for
	// the host's next request on the same connection.
	lies["read-long"] = lie{protocol.PathFileRead, func(w http.ResponseWriter, _ *http.Request, _ []string) {
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(rw, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Type: application/octet-stream\r\n\r\n0123456789")
		rw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nplanted" + strings.Repeat("x", 100000))
		rw.Flush()
	}}

	op := func(answer func(w *bufio.Writer, args []string)) lie {
		return lie{protocol.PathFileOp, func(w http.ResponseWriter, _ *http.Request, args []string) {
			w.Header().Set("Content-Type", "application/json")
			bw := bufio.NewWriterSize(w, 64<<10)
			answer(bw, args)
			bw.Flush()
		}}
	}
	// A listing without end: entries for as long as the host reads.
	lies["op-endless"] = op(func(w *bufio.Writer, _ []string) {
		w.WriteString(`{"entries":[`)
		for {
			if _, err := w.WriteString(`{"name":"a-name-that-takes-room","type":"file","size":1,"mode":420,"mtime_ns":0},`); err != nil {
				return
			}
		}
	})
	// Entries no folder can hold: names with a slash, a NUL, "..", ".",
	// empty; a negative size; every mode bit; an unknown type; a stat
	// whose info is the same.
	absurd := `{"name":"../../etc/passwd","type":"file","size":-1,"mode":4294967295,"mtime_ns":-9223372036854775808},` +
		`{"name":"a/b","type":"dir","size":0,"mode":0,"mtime_ns":0},` +
		`{"name":"nul\u0000byte","type":"file","size":1,"mode":420,"mtime_ns":0},` +
		`{"name":"..","type":"dir","size":0,"mode":493,"mtime_ns":0},` +
		`{"name":"","type":"weird","size":9223372036854775807,"mode":420,"mtime_ns":0}`
	lies["op-absurd"] = op(func(w *bufio.Writer, _ []string) {
		w.WriteString(`{"info":{"name":"../../etc/passwd","type":"file","size":-1,"mode":4294967295,"mtime_ns":0},"entries":[` + absurd + `]}`)
	})
	// Not JSON at all.
	lies["op-junk"] = op(func(w *bufio.Writer, _ []string) {
		w.WriteString("\x00\xff<html>not json")
	})
}
