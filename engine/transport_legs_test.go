package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/quicksand-go/quicksand/engine/internal/agent"
	"github.com/quicksand-go/quicksand/internal/protocol"
)

// TestTransportLegs measures (QS_LEGS_BENCH=rounds) where the time of
// execute("true") goes, leg by leg, in alternating rounds on one sandbox
// (issue 31): the whole call through the engine (HTTP over the mux port,
// output over the channel); the same call by the engine's client over the
// port forward (the transport before the mux port); the request in-band
// over HTTP
// (no channel); /ping over HTTP (no fork, no exec: slirp, the guest's TCP
// and the agent's HTTP server); /ping and execute over a virtio-serial port
// (the agent's framed transport, Quicksand's dialect: no slirp, no guest
// TCP); and, natively on the host, an HTTP round trip to an in-process
// server (what client and server cost without emulation).
func TestTransportLegs(t *testing.T) {
	rounds := legsRounds(t)
	t.Setenv(TransportEnv, "mux")
	ctx := context.Background()
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	sb := startSandbox(t, Config{ColdBoot: true, ExtraQEMUArgs: []string{
		"-chardev", "socket,id=qslegs,path=" + sock + ",server=on,wait=off",
		"-device", "virtio-serial-pci,id=qslegsbus",
		"-device", "virtserialport,bus=qslegsbus.0,chardev=qslegs,name=" + protocol.AgentPortName,
	}})
	frames := dialFrames(t, sock, sb.token)
	if err := sb.muxLink.Wait(ctx); err != nil {
		t.Fatalf("no mux link: %v", err)
	}
	// The same client as the engine's, without the mux link.
	forward := agent.New("127.0.0.1:"+strconv.Itoa(sb.port), sb.token)
	forward.SetChannel(sb.channel)
	plain := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	base := "http://127.0.0.1:" + strconv.Itoa(sb.port)
	post := func(path, body string) error {
		req, _ := http.NewRequest(http.MethodPost, base+path, bytes.NewBufferString(body))
		req.Header.Set("Authorization", "Bearer "+sb.token)
		req.Header.Set(protocol.ExtensionsHeader, "1")
		resp, err := plain.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	native := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"pong":true,"pid":1}`))
	}))
	defer native.Close()
	legs := []struct {
		name string
		run  func() error
	}{
		{"execute(\"true\") through the engine (mux port, output channel)", func() error {
			_, err := sb.Execute(ctx, ExecRequest{Command: "true"})
			return err
		}},
		{"execute(\"true\"), the engine's client on the port forward", func() error {
			_, err := forward.Execute(ctx, protocol.ExecRequest{Command: "true"}, nil)
			return err
		}},
		{"POST /execute true over HTTP, output in-band", func() error { return post(protocol.PathExecute, `{"command":"true"}`) }},
		{"GET /ping over HTTP (port forward, guest TCP)", func() error { return sb.client.Ping(ctx) }},
		{"ping over virtio-serial frames", func() error { return frames.call("ping", nil) }},
		{"execute true over virtio-serial frames", func() error { return frames.call("execute", map[string]string{"command": "true"}) }},
		{"HTTP round trip on the host, no VM", func() error {
			resp, err := plain.Get(native.URL)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			return err
		}},
	}
	const perRound = 50
	samples := make([][]float64, len(legs))
	for r := 0; r <= rounds; r++ { // round 0 warms up
		for i, leg := range legs {
			for range perRound {
				start := time.Now()
				if err := leg.run(); err != nil {
					t.Fatalf("%s: %v", leg.name, err)
				}
				if r > 0 {
					samples[i] = append(samples[i], float64(time.Since(start).Microseconds())/1000)
				}
			}
		}
	}
	t.Logf("%d rounds of %d calls each, alternated; median and p90 in ms:", rounds, perRound)
	for i, leg := range legs {
		s := samples[i]
		sort.Float64s(s)
		t.Logf("  %-62s %6.2f  %6.2f", leg.name, s[len(s)/2], s[len(s)*9/10])
	}
}

// legsRounds is QS_LEGS_BENCH, the rounds a legs measurement runs; without
// it the measurement is skipped (it measures, it checks nothing).
func legsRounds(t *testing.T) int {
	rounds, _ := strconv.Atoi(os.Getenv("QS_LEGS_BENCH"))
	if rounds == 0 {
		t.Skip("set QS_LEGS_BENCH=rounds to measure")
	}
	return rounds
}

// framesClient speaks the agent's framed transport on a virtio-serial port.
type framesClient struct {
	t    *testing.T
	conn net.Conn
	rd   *bufio.Reader
	id   uint64
}

func dialFrames(t *testing.T, sock, token string) *framesClient {
	var conn net.Conn
	var err error
	for i := 0; i < 100; i++ {
		if conn, err = net.Dial("unix", sock); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	f := &framesClient{t: t, conn: conn, rd: bufio.NewReader(conn)}
	// The agent looks at the port every 250 ms at most while nobody is on
	// it: the first answer may take that long.
	if err := f.call("authenticate", map[string]string{"token": token}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *framesClient) call(method string, params any) error {
	f.id++
	raw, _ := json.Marshal(map[string]any{"id": f.id, "method": method, "params": params})
	buf := binary.BigEndian.AppendUint32(nil, uint32(len(raw)))
	if _, err := f.conn.Write(append(buf, raw...)); err != nil {
		return err
	}
	f.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(f.rd, hdr[:]); err != nil {
			return err
		}
		payload := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(f.rd, payload); err != nil {
			return err
		}
		var ans struct {
			ID    uint64          `json:"id"`
			Error json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(payload, &ans); err != nil {
			return err
		}
		if ans.ID != f.id {
			continue
		}
		if len(ans.Error) > 0 && string(ans.Error) != "null" {
			return fmt.Errorf("%s: %s", method, ans.Error)
		}
		return nil
	}
}
