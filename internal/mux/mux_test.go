package mux

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// pair is a client and a server session over a socket pair.
func pair(t *testing.T) (*Session, *Session) {
	t.Helper()
	c, s := socketPair(t)
	srv := Server(s)
	t.Cleanup(func() { srv.Close() })
	return startClient(t, c), srv
}

// startClient starts a client session on c, closed when the test ends.
func startClient(t *testing.T, c net.Conn) *Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl, err := Client(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func socketPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("unix", t.TempDir()+"/s")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

// httpOver serves handler on srv and returns a client whose connections
// are streams of cl.
func httpOver(t *testing.T, cl, srv *Session, handler http.Handler) *http.Client {
	hs := &http.Server{Handler: handler}
	go hs.Serve(srv)
	t.Cleanup(func() { hs.Close() })
	return &http.Client{Transport: &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) { return cl.Open() }}}
}

func TestHTTPOverStreams(t *testing.T) {
	cl, srv := pair(t)
	big := make([]byte, 3*Window+12345) // more than a window: credit must come back
	rand.Read(big)
	hc := httpOver(t, cl, srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/echo" {
			w.Write(body)
			return
		}
		w.Write(big)
	}))
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			msg := bytes.Repeat([]byte(fmt.Sprint(i)), 100000)
			resp, err := hc.Post("http://sb/echo", "application/octet-stream", bytes.NewReader(msg))
			if err != nil {
				errs <- err
				return
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !bytes.Equal(got, msg) {
				errs <- fmt.Errorf("echo %d: %d bytes back, want %d", i, len(got), len(msg))
			}
			resp, err = hc.Get("http://sb/big")
			if err != nil {
				errs <- err
				return
			}
			got, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if !bytes.Equal(got, big) {
				errs <- fmt.Errorf("big %d: %d bytes, want %d", i, len(got), len(big))
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCancellingAStreamingCallEndsTheHandler(t *testing.T) {
	cl, srv := pair(t)
	ended := make(chan error, 1)
	hc := httpOver(t, cl, srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for {
			if _, err := fmt.Fprintf(w, "data: tick\n\n"); err != nil {
				ended <- err
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				ended <- r.Context().Err()
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://sb/stream", nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	if line != "data: tick\n" {
		t.Fatalf("first line %q", line)
	}
	cancel()
	resp.Body.Close()
	select {
	case err := <-ended:
		if err == nil {
			t.Fatal("the handler ended without an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler went on after the call was cancelled")
	}
}

func TestAStalledStreamHoldsUpNoOther(t *testing.T) {
	cl, srv := pair(t)
	stalled, err := cl.Open()
	if err != nil {
		t.Fatal(err)
	}
	sStalled, _ := srv.Accept() // never read
	defer sStalled.Close()
	// The writer gets a window's worth through, then waits.
	stalled.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	n, err := stalled.Write(make([]byte, 2*Window))
	if n != Window || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("wrote %d (%v), want a window (%d) and a timeout", n, err, Window)
	}
	// Another stream goes on.
	other, _ := cl.Open()
	sOther, _ := srv.Accept()
	go io.Copy(sOther, sOther)
	msg := make([]byte, 2*Window)
	rand.Read(msg)
	go other.Write(msg)
	got := make([]byte, len(msg))
	other.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(other, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("the other stream: %v", err)
	}
	// Once the stalled one is read, its writer goes on.
	go io.Copy(io.Discard, sStalled)
	stalled.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := stalled.Write(make([]byte, 2*Window)); err != nil {
		t.Fatalf("after the reader caught up: %v", err)
	}
}

func TestDeadlinesAndClose(t *testing.T) {
	cl, srv := pair(t)
	st, _ := cl.Open()
	sst, _ := srv.Accept()
	st.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := st.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past its deadline: %v", err)
	}
	// A deadline moved into the past wakes a reader waiting now.
	st.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() { _, err := st.Read(make([]byte, 1)); done <- err }()
	time.Sleep(20 * time.Millisecond)
	st.SetReadDeadline(time.Unix(1, 0))
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("woken read: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a deadline in the past did not wake the reader")
	}
	// What was written before a close is read, then EOF.
	sst.Write([]byte("last words"))
	sst.Close()
	st.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(st)
	if err != nil || string(got) != "last words" {
		t.Fatalf("after the other end closed: %q, %v", got, err)
	}
	if _, err := st.Write([]byte("x")); err == nil {
		t.Fatal("a write to a stream the other end closed went through")
	}
	st.Close()
	if _, err := st.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	// A session's end ends its streams and its Accept.
	st2, _ := cl.Open()
	cl.Close()
	if _, err := st2.Read(make([]byte, 1)); err == nil {
		t.Fatal("a stream outlived its session")
	}
	if _, err := cl.Open(); err == nil {
		t.Fatal("opened a stream on a closed session")
	}
}

// fakeServer stands for a hostile agent on the raw connection: it answers
// the client's hello, waits while the client opens its streams, then does
// what then says (reading nothing more unless it does). It returns the
// client's session.
func fakeServer(t *testing.T, then func(s net.Conn)) *Session {
	t.Helper()
	c, s := socketPair(t)
	go func() {
		hello := make([]byte, headerLen+nonceLen)
		io.ReadFull(s, hello)
		s.Write(hello)
		time.Sleep(100 * time.Millisecond)
		then(s)
	}()
	return startClient(t, c)
}

// switchboard is a server's connection that clients take turns on, as the
// engines of a VM frozen and resumed do on its virtio-serial port.
type switchboard struct {
	in  *io.PipeReader
	inW *io.PipeWriter
	mu  sync.Mutex
	out io.Writer
}

func newSwitchboard() *switchboard {
	r, w := io.Pipe()
	return &switchboard{in: r, inW: w, out: io.Discard}
}

func (sw *switchboard) Read(p []byte) (int, error) { return sw.in.Read(p) }
func (sw *switchboard) Write(p []byte) (int, error) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.out.Write(p)
}

// plug connects a new client end: what it writes reaches the server, what
// the server writes reaches it.
func (sw *switchboard) plug(t *testing.T) io.ReadWriteCloser {
	r, w := io.Pipe()
	sw.mu.Lock()
	sw.out = w
	sw.mu.Unlock()
	return &clientEnd{r: r, w: sw.inW}
}

type clientEnd struct {
	r *io.PipeReader
	w *io.PipeWriter
}

func (c *clientEnd) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *clientEnd) Write(p []byte) (int, error) { return c.w.Write(p) }
func (c *clientEnd) Close() error                { c.r.Close(); return nil }

func TestANewClientResetsTheOldSessionEvenMidFrame(t *testing.T) {
	sw := newSwitchboard()
	srv := Server(sw)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := Client(ctx, sw.plug(t))
	if err != nil {
		t.Fatal(err)
	}
	aStream, _ := a.Open()
	old, _ := srv.Accept()
	// A frame cut short, as a freeze may leave it: its header says more
	// than ever comes.
	sw.inW.Write(header{typ: typeData, stream: aStream.id, length: MaxPayload}.encode([]byte("only part")))

	b, err := Client(ctx, sw.plug(t))
	if err != nil {
		t.Fatalf("the new client's hello was not answered: %v", err)
	}
	// The old stream may first get the rest of its cut frame (whatever
	// completed it), then its session's reset.
	old.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, old); !errors.Is(err, ErrReset) {
		t.Fatalf("the old session's stream: %v, want a reset", err)
	}
	hc := httpOver(t, b, srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "new session") }))
	resp, err := hc.Get("http://sb/")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != "new session" {
		t.Fatalf("got %q", got)
	}
}

// A hostile server (the guest) can end its own session, never hang or
// overrun the client.
func TestAHostileServer(t *testing.T) {
	t.Run("never answers the hello", func(t *testing.T) {
		c, _ := socketPair(t)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if _, err := Client(ctx, c); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("sends junk instead of an answer", func(t *testing.T) {
		c, s := socketPair(t)
		go func() {
			junk := bytes.Repeat([]byte("QM\x01\x00junk"), 1<<16)
			for {
				if _, err := s.Write(junk); err != nil {
					return
				}
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := Client(ctx, c); err == nil || !strings.Contains(err.Error(), "no answer") {
			t.Fatalf("got %v", err)
		}
	})
	lie := func(t *testing.T, frames func(w io.Writer)) (*Session, *Stream) {
		cl := fakeServer(t, func(s net.Conn) {
			frames(s)
			io.Copy(io.Discard, s)
		})
		st, err := cl.Open()
		if err != nil {
			t.Fatal(err)
		}
		return cl, st
	}
	t.Run("sends more than the window", func(t *testing.T) {
		_, st := lie(t, func(w io.Writer) {
			for i := 0; i < Window/MaxPayload+2; i++ {
				w.Write(header{typ: typeData, stream: 1, length: MaxPayload}.encode(make([]byte, MaxPayload)))
			}
		})
		time.Sleep(300 * time.Millisecond)
		st.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := io.ReadAll(st)
		if err == nil || !strings.Contains(err.Error(), "more than the window") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("sends a frame longer than allowed", func(t *testing.T) {
		cl, st := lie(t, func(w io.Writer) {
			w.Write(header{typ: typeData, stream: 1, length: 1 << 30}.encode(nil))
		})
		st.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := st.Read(make([]byte, 1)); err == nil || !strings.Contains(err.Error(), "malformed") {
			t.Fatalf("got %v", err)
		}
		<-cl.Done()
	})
	t.Run("opens streams and gives unasked credit", func(t *testing.T) {
		cl, st := lie(t, func(w io.Writer) {
			w.Write(header{typ: typeOpen, stream: 7}.encode(nil))
			w.Write(header{typ: typeWindow, stream: 1, length: 4}.encode([]byte{0xff, 0xff, 0xff, 0xff}))
		})
		st.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := st.Read(make([]byte, 1)); err == nil || !strings.Contains(err.Error(), "credit") {
			t.Fatalf("got %v", err)
		}
		if cl.Err() != nil {
			t.Fatalf("the session ended: %v", cl.Err())
		}
	})
}

// A guest that stops reading its port must not hold up a Close or a Read
// (net/http closes a cancelled call's connection in the caller's
// goroutine).
func TestAPeerThatStopsReadingHoldsUpNoCloseOrRead(t *testing.T) {
	// It reads nothing after the hello, and sends data on stream 1,
	// which the client must give credit back for without waiting on the
	// port.
	cl := fakeServer(t, func(s net.Conn) {
		s.Write(header{typ: typeData, stream: 1, length: MaxPayload}.encode(make([]byte, MaxPayload)))
		s.Write(header{typ: typeData, stream: 1, length: MaxPayload}.encode(make([]byte, MaxPayload)))
	})
	reader, _ := cl.Open() // stream 1
	writer, _ := cl.Open()
	go writer.Write(make([]byte, 4*Window)) // blocks once the socket is full
	time.Sleep(300 * time.Millisecond)
	read := make(chan error, 1)
	go func() {
		buf := make([]byte, 2*MaxPayload)
		reader.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.ReadFull(reader, buf); err != nil { // credit falls due here
			read <- err
			return
		}
		_, err := reader.Read(buf) // nothing more comes: its deadline ends it
		read <- err
	}()
	select {
	case err := <-read:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read: %v, want its deadline", err)
		}
	case <-time.After(4 * time.Second):
		t.Fatal("a Read waited on a peer that reads nothing")
	}
	closed := make(chan struct{})
	go func() {
		reader.Close()
		writer.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Fatal("Close waited on a peer that reads nothing")
	}
}

// A peer that takes nothing more (a frozen QEMU): the write in flight and
// every call made meanwhile end once stuckLimit passed, rather than wait
// for ever behind the write in flight.
func TestAPeerThatTakesNothingEndsTheSession(t *testing.T) {
	defer func(was time.Duration) { stuckLimit = was }(stuckLimit)
	stuckLimit = 300 * time.Millisecond
	cl := fakeServer(t, func(s net.Conn) {}) // reads nothing after the hello
	st, err := cl.Open()
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 3)
	go func() { _, err := st.Write(make([]byte, 4*Window)); ended <- err }() // fills the socket, then waits
	time.Sleep(100 * time.Millisecond)
	go func() { _, err := cl.Open(); ended <- err }() // waits behind it
	go func() { _, err := st.Read(make([]byte, 1)); ended <- err }()
	for range 3 {
		select {
		case err := <-ended:
			if err == nil {
				t.Fatal("a call on a stuck session succeeded")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("calls still waiting on a peer that took nothing for 5 s")
		}
	}
	if err := cl.Err(); err == nil || !strings.Contains(err.Error(), "took nothing") {
		t.Fatalf("the session ended with %v, want that the other end took nothing", err)
	}
}

// An agent killed and started again: the new server says so, and the
// client's calls in flight end at once rather than wait for answers that
// will never come.
func TestAServerThatStartsOverEndsTheClientsCalls(t *testing.T) {
	cl := fakeServer(t, func(s net.Conn) {
		// A new server process on the same port: its first words.
		s.Write(helloFrame(startedOver))
		io.Copy(io.Discard, s)
	})
	st, _ := cl.Open()
	st.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := st.Read(make([]byte, 1)); !errors.Is(err, ErrStartedOver) {
		t.Fatalf("a call in flight: %v, want ErrStartedOver", err)
	}
	<-cl.Done()
	if !errors.Is(cl.Err(), ErrStartedOver) {
		t.Fatalf("the session: %v", cl.Err())
	}
}

func TestAServerTakesNothingBeforeAHello(t *testing.T) {
	c, s := socketPair(t)
	srv := Server(s)
	defer srv.Close()
	// A client of the server's predecessor opens a stream.
	c.Write(header{typ: typeOpen, stream: 1}.encode(nil))
	c.Write(header{typ: typeData, stream: 1, length: 3}.encode([]byte("old")))
	r := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := 0; i < 2; i++ { // as it started, then in answer
		frame := make([]byte, headerLen+nonceLen)
		if _, err := io.ReadFull(r, frame); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(frame, helloFrame(startedOver)) {
			t.Fatalf("frame %d: % x, want the server's own hello", i, frame)
		}
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		conn, _ := srv.Accept()
		accepted <- conn
	}()
	select {
	case <-accepted:
		t.Fatal("a stream opened before any hello was accepted")
	case <-time.After(200 * time.Millisecond):
	}
}

// A guest that floods frames for streams the engine never opened, and
// reads nothing, gets at most answerBacklog resets queued: the engine's
// memory does not grow with the flood.
func TestJunkIsAnsweredWithinBounds(t *testing.T) {
	flood := make([]byte, 0, 200000*headerLen)
	for i := uint32(0); i < 200000; i++ {
		flood = append(flood, header{typ: typeWindow, stream: 1001 + 2*i, length: 4}.encode([]byte{0, 0, 0, 1})...)
	}
	sent := make(chan struct{})
	cl := fakeServer(t, func(s net.Conn) {
		s.Write(flood)
		close(sent)
	})
	select {
	case <-sent:
	case <-time.After(10 * time.Second):
		t.Fatal("the client stopped reading the flood")
	}
	time.Sleep(100 * time.Millisecond)
	cl.ctlMu.Lock()
	queued := len(cl.answers)
	cl.ctlMu.Unlock()
	if queued > answerBacklog {
		t.Fatalf("%d answers queued, more than %d", queued, answerBacklog)
	}
	if cl.Err() != nil {
		t.Fatalf("the session ended: %v", cl.Err())
	}
}

// scriptedPort is a server's port that hands out what is in it, then
// waits; it counts the reads (each a system call on a real port) and keeps
// what the server writes.
type scriptedPort struct {
	in    *bytes.Reader
	reads int
	mu    sync.Mutex
	out   bytes.Buffer
	wrote chan struct{}
}

func (p *scriptedPort) Read(b []byte) (int, error) {
	p.mu.Lock()
	p.reads++
	n, _ := p.in.Read(b)
	p.mu.Unlock()
	if n == 0 {
		select {} // nothing more comes
	}
	return n, nil
}

func (p *scriptedPort) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out.Write(b)
	select {
	case p.wrote <- struct{}{}:
	default:
	}
	return len(b), nil
}

// A client's zeros (what it sends when its hello goes unanswered, to end a
// frame cut short) are skipped a buffer at a time: under emulation each
// read of the port is a costly system call, and 32 KiB of them one byte
// each cost a clone's agent most of a second of a busy machine.
func TestZerosBeforeAHelloCostFewReads(t *testing.T) {
	nonce := bytes.Repeat([]byte{7}, nonceLen)
	var in []byte
	in = append(in, make([]byte, headerLen+MaxPayload)...)
	in = append(in, 'Q', 'M', 'Q') // a start that is not a hello
	in = append(in, helloFrame(nonce)...)
	port := &scriptedPort{in: bytes.NewReader(in), wrote: make(chan struct{}, 1)}
	s := Server(port)
	defer s.Close()
	want := helloFrame(nonce)
	deadline := time.After(5 * time.Second)
	for {
		port.mu.Lock()
		answered := bytes.Contains(port.out.Bytes(), want)
		reads := port.reads
		port.mu.Unlock()
		if answered {
			if reads > 8 {
				t.Fatalf("%d reads of the port for %d bytes", reads, len(in))
			}
			return
		}
		select {
		case <-port.wrote:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("the hello after the zeros was not answered (%d reads)", reads)
		}
	}
}

// skipToHello finds a hello wherever it begins: inside the bytes already
// read, after false starts, across reads.
func TestSkipToHello(t *testing.T) {
	hello := helloHeader
	for _, c := range []struct {
		name      string
		hdr, rest []byte
	}{
		{"after zeros", make([]byte, headerLen), append(make([]byte, 100), hello...)},
		{"begun in hdr", append(make([]byte, 5), hello[:7]...), hello[7:]},
		{"begun in hdr's last byte", append(make([]byte, 11), hello[0]), hello[1:]},
		{"false starts", []byte("QMQMQMQMQMQM"), append([]byte("QMxQ"), hello...)},
		{"a false start in hdr", append(make([]byte, 6), hello[:6]...), append([]byte("junk"), hello...)},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := bufio.NewReaderSize(bytes.NewReader(append(append([]byte(nil), c.rest...), "after"...)), 16)
			if err := skipToHello(r, c.hdr); err != nil {
				t.Fatal(err)
			}
			if got, _ := io.ReadAll(r); string(got) != "after" {
				t.Fatalf("read on from %q, want what follows the hello", got)
			}
		})
	}
	r := bufio.NewReaderSize(bytes.NewReader([]byte("no hello here")), 16)
	if err := skipToHello(r, make([]byte, headerLen)); err != io.EOF {
		t.Fatalf("no hello: %v, want EOF", err)
	}
}

func TestHeaders(t *testing.T) {
	// docs/protocol.md gives these.
	if MaxPayload != 32<<10 || Window != 256<<10 || headerLen != 12 {
		t.Fatalf("MaxPayload %d, Window %d, header %d: not what the protocol's documentation says", MaxPayload, Window, headerLen)
	}
	for _, c := range []struct {
		h  header
		ok bool
	}{
		{header{typ: typeHello, length: nonceLen}, true},
		{header{typ: typeHello, length: 3}, false},
		{header{typ: typeHello, stream: 1, length: nonceLen}, false},
		{header{typ: typeData, stream: 1, length: MaxPayload}, true},
		{header{typ: typeData, stream: 1, length: MaxPayload + 1}, false},
		{header{typ: typeData, stream: 0, length: 1}, false},
		{header{typ: typeWindow, stream: 1, length: 4}, true},
		{header{typ: typeClose, stream: 1, length: 1}, false},
		{header{typ: 9, stream: 1}, false},
	} {
		if _, ok := decodeHeader(c.h.encode(nil)); ok != c.ok {
			t.Errorf("%+v: ok %v, want %v", c.h, ok, c.ok)
		}
	}
	b := header{typ: typeData, stream: 1}.encode(nil)
	b[0] = 'X'
	if _, ok := decodeHeader(b); ok {
		t.Error("a header without the magic was taken")
	}
}
