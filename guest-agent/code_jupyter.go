package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/pkg/errors"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// A Python context is an ipykernel process, spoken to in the Jupyter
// messaging protocol (version 5.3) over ZeroMQ on the guest's loopback:
// execute requests on the shell socket, output on the iopub socket,
// interrupts as SIGINT (the kernel's default interrupt mode). The agent is
// the only client; the kernel's ports are the guest's, so only guest
// programs (already the user's own code) can reach them.

// kernelStartTimeout bounds a kernel's start: importing IPython takes
// seconds under emulation.
const kernelStartTimeout = 90 * time.Second

// interruptGrace is how long an interrupted cell may take to stop before
// the kernel is killed (and the next run starts a fresh one).
const interruptGrace = 10 * time.Second

// codeStateDir holds the kernels' connection files.
const codeStateDir = "/run/quicksand-code"

type jupyterKernel struct {
	cmd     *exec.Cmd
	key     []byte
	session string
	shell   zmq4.Socket
	iopub   zmq4.Socket
	// dead is closed when the kernel process ends.
	dead chan struct{}
	// messages from both sockets, read by one goroutine each.
	shellIn chan jupyterMessage
	iopubIn chan jupyterMessage
	stop    context.CancelFunc
	closing sync.Once
}

type jupyterMessage struct {
	Header       map[string]any
	ParentHeader map[string]any
	Content      map[string]any
}

func (m jupyterMessage) msgType() string { s, _ := m.Header["msg_type"].(string); return s }
func (m jupyterMessage) parentID() string {
	s, _ := m.ParentHeader["msg_id"].(string)
	return s
}

// pythonKernelAvailable says whether the image has ipykernel.
func pythonKernelAvailable() bool {
	_, err := os.Stat("/usr/lib/python3/dist-packages/ipykernel")
	return err == nil
}

// preloadLines imports, without binding a name, the libraries a default
// context's first cells most likely use: seconds each under emulation, paid
// once in the warm-start template rather than in every sandbox.
const preloadLines = "import importlib as __qs_i\nfor __qs_m in ('numpy', 'pandas', 'matplotlib.pyplot'):\n    try: __qs_i.import_module(__qs_m)\n    except ImportError: pass\ndel __qs_i, __qs_m"

// startJupyterKernel starts ipykernel in cwd and waits until it answers;
// with preload, after loading the usual libraries.
func startJupyterKernel(ctx context.Context, cwd string, preload bool) (*jupyterKernel, error) {
	if !pythonKernelAvailable() {
		return nil, errors.New("this image has no Python kernel (ipykernel): run Python code in an image that has one, such as debian-python")
	}
	ports, err := freePorts(5)
	if err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	hexKey := hex.EncodeToString(key)
	conn := map[string]any{
		"transport": "tcp", "ip": "127.0.0.1", "signature_scheme": "hmac-sha256", "key": hexKey,
		"shell_port": ports[0], "iopub_port": ports[1], "stdin_port": ports[2], "control_port": ports[3], "hb_port": ports[4],
		"kernel_name": "python3",
	}
	if err := os.MkdirAll(codeStateDir, 0o700); err != nil {
		return nil, err
	}
	connFile := filepath.Join(codeStateDir, "kernel-"+randomID()+".json")
	raw, _ := json.Marshal(conn)
	if err := os.WriteFile(connFile, raw, 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command("python3", "-m", "ipykernel_launcher", "-f", connFile,
		// Tracebacks as plain text, not ANSI colours.
		"--InteractiveShell.colors=NoColor",
		// No history database: a write to SQLite per cell, and a file
		// every context would share.
		"--HistoryManager.enabled=False")
	if preload {
		cmd.Args = append(cmd.Args, "--IPKernelApp.exec_lines="+preloadLines)
	}
	cmd.Dir = cwd
	cmd.Env = append(os.Environ(), "HOME=/root", "PYDEVD_DISABLE_FILE_VALIDATION=1", "JUPYTER_PLATFORM_DIRS=1")
	// Its own process group: an interrupt or a kill reaches the kernel and
	// what it started, not the agent.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, errors.Wrap(err, "starting the Python kernel")
	}
	kctx, stop := context.WithCancel(context.Background())
	k := &jupyterKernel{cmd: cmd, key: []byte(hexKey), session: randomID(), dead: make(chan struct{}), stop: stop,
		shellIn: make(chan jupyterMessage, 64), iopubIn: make(chan jupyterMessage, 1024)}
	go func() { _ = cmd.Wait(); os.Remove(connFile); close(k.dead) }()
	if err := k.connect(ctx, kctx, ports); err != nil {
		k.close()
		return nil, err
	}
	return k, nil
}

// connect waits for the kernel's shell port, connects both sockets and
// waits for a kernel_info reply and for iopub to carry messages (a SUB
// socket misses what is published before it joins).
func (k *jupyterKernel) connect(ctx, kctx context.Context, ports []int) error {
	ctx, cancel := context.WithTimeout(ctx, kernelStartTimeout)
	defer cancel()
	shellAddr := "127.0.0.1:" + strconv.Itoa(ports[0])
	for {
		if c, err := net.DialTimeout("tcp", shellAddr, time.Second); err == nil {
			c.Close()
			break
		}
		select {
		case <-k.dead:
			return errors.New("the Python kernel ended as it started")
		case <-ctx.Done():
			return errors.New("the Python kernel did not start in time")
		case <-time.After(50 * time.Millisecond):
		}
	}
	k.shell = zmq4.NewDealer(kctx, zmq4.WithID(zmq4.SocketIdentity(k.session)))
	k.iopub = zmq4.NewSub(kctx)
	if err := k.shell.Dial("tcp://" + shellAddr); err != nil {
		return errors.Wrap(err, "connecting to the kernel's shell")
	}
	if err := k.iopub.Dial("tcp://127.0.0.1:" + strconv.Itoa(ports[1])); err != nil {
		return errors.Wrap(err, "connecting to the kernel's iopub")
	}
	if err := k.iopub.SetOption(zmq4.OptionSubscribe, ""); err != nil {
		return err
	}
	go k.read(k.shell, k.shellIn)
	go k.read(k.iopub, k.iopubIn)
	for {
		answered, err := k.kernelInfo(ctx)
		if answered || err != nil {
			return err
		}
	}
}

// kernelInfo asks for the kernel's info and says whether both the reply
// and the kernel's status on iopub came within a second.
func (k *jupyterKernel) kernelInfo(ctx context.Context) (bool, error) {
	id, err := k.send("kernel_info_request", map[string]any{})
	if err != nil {
		return false, err
	}
	gotReply, gotIOPub := false, false
	deadline := time.After(time.Second)
	for !(gotReply && gotIOPub) {
		select {
		case m := <-k.shellIn:
			gotReply = gotReply || m.parentID() == id
		case m := <-k.iopubIn:
			gotIOPub = gotIOPub || m.parentID() == id
		case <-deadline:
			return false, nil
		case <-k.dead:
			return false, errors.New("the Python kernel ended as it started")
		case <-ctx.Done():
			return false, errors.New("the Python kernel did not answer in time")
		}
	}
	return true, nil
}

// read hands each signed message of sock to out, until the socket closes.
func (k *jupyterKernel) read(sock zmq4.Socket, out chan<- jupyterMessage) {
	for {
		msg, err := sock.Recv()
		if err != nil {
			return
		}
		m, ok := k.decode(msg.Frames)
		if !ok {
			continue
		}
		select {
		case out <- m:
		case <-k.dead:
			return
		}
	}
}

var delimiter = []byte("<IDS|MSG>")

// decode checks a message's signature and parses it.
func (k *jupyterKernel) decode(frames [][]byte) (jupyterMessage, bool) {
	i := 0
	for i < len(frames) && string(frames[i]) != string(delimiter) {
		i++
	}
	if len(frames) < i+6 {
		return jupyterMessage{}, false
	}
	parts := frames[i+2 : i+6]
	want, err := hex.DecodeString(string(frames[i+1]))
	if err != nil || !hmac.Equal(want, k.sign(parts)) {
		return jupyterMessage{}, false
	}
	var m jupyterMessage
	if json.Unmarshal(parts[0], &m.Header) != nil || json.Unmarshal(parts[1], &m.ParentHeader) != nil ||
		json.Unmarshal(parts[3], &m.Content) != nil {
		return jupyterMessage{}, false
	}
	return m, true
}

func (k *jupyterKernel) sign(parts [][]byte) []byte {
	mac := hmac.New(sha256.New, k.key)
	for _, p := range parts {
		mac.Write(p)
	}
	return mac.Sum(nil)
}

// send sends one request on the shell socket and returns its msg_id.
func (k *jupyterKernel) send(msgType string, content map[string]any) (string, error) {
	id := randomID()
	header, _ := json.Marshal(map[string]any{
		"msg_id": id, "session": k.session, "username": "quicksand", "msg_type": msgType,
		"version": "5.3", "date": time.Now().UTC().Format(time.RFC3339Nano),
	})
	body, _ := json.Marshal(content)
	parts := [][]byte{header, []byte("{}"), []byte("{}"), body}
	sig := []byte(hex.EncodeToString(k.sign(parts)))
	frames := append([][]byte{delimiter, sig}, parts...)
	if err := k.shell.SendMulti(zmq4.NewMsgFrom(frames...)); err != nil {
		return "", errors.Wrap(err, "sending to the kernel")
	}
	return id, nil
}

// interrupt sends SIGINT to the kernel (KeyboardInterrupt in the cell).
func (k *jupyterKernel) interrupt() { _ = k.cmd.Process.Signal(syscall.SIGINT) }

func (k *jupyterKernel) alive() bool {
	select {
	case <-k.dead:
		return false
	default:
		return true
	}
}

// close kills the kernel and what it started and closes the sockets.
func (k *jupyterKernel) close() {
	k.closing.Do(func() {
		_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
		<-k.dead
		k.stop()
		if k.shell != nil {
			k.shell.Close()
		}
		if k.iopub != nil {
			k.iopub.Close()
		}
	})
}

// envCode is a cell that sets (or, with restore, puts back) environment
// variables around a run.
func envCode(env map[string]string) (set, restore string) {
	raw, _ := json.Marshal(env)
	set = fmt.Sprintf("import os as __qs_os, json as __qs_json\n__qs_saved_env = {k: __qs_os.environ.get(k) for k in __qs_json.loads(%q)}\n__qs_os.environ.update(__qs_json.loads(%q))", raw, raw)
	restore = "for __qs_k, __qs_v in __qs_saved_env.items():\n    (__qs_os.environ.pop(__qs_k, None) if __qs_v is None else __qs_os.environ.__setitem__(__qs_k, __qs_v))\ndel __qs_saved_env"
	return set, restore
}

// execute runs code in the kernel, calling emit with each event (the end
// event is the caller's). It returns the execution count. A timeout or a
// cancelled ctx interrupts the cell; a kernel that ends fails the run.
func (k *jupyterKernel) execute(ctx context.Context, code string, silent bool, timeout time.Duration, emit func(protocol.CodeEvent) error) (count int, err error) {
	// Messages of earlier runs (an interrupted one's last words) are not
	// this run's.
	k.drain()
	id, err := k.send("execute_request", map[string]any{
		"code": code, "silent": silent, "store_history": !silent, "user_expressions": map[string]any{},
		"allow_stdin": false, "stop_on_error": true,
	})
	if err != nil {
		return 0, err
	}
	var expire <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expire = t.C
	}
	var interrupted string // why, once interrupted
	var grace <-chan time.Time
	idle, replied := false, false
	var emitErr error
	send := func(ev protocol.CodeEvent) {
		if emitErr == nil && !silent {
			emitErr = emit(ev)
		}
	}
	for !(idle && replied) {
		select {
		case m := <-k.iopubIn:
			if m.parentID() != id {
				continue
			}
			switch m.msgType() {
			case "stream":
				name, _ := m.Content["name"].(string)
				text, _ := m.Content["text"].(string)
				kind := protocol.CodeEventStdout
				if name == "stderr" {
					kind = protocol.CodeEventStderr
				}
				send(protocol.CodeEvent{Type: kind, Text: text})
			case "execute_result", "display_data":
				data, _ := m.Content["data"].(map[string]any)
				send(protocol.CodeEvent{Type: protocol.CodeEventResult, Result: &protocol.CodeResult{
					Data: data, IsMainResult: m.msgType() == "execute_result"}})
			case "error":
				if interrupted != "" {
					continue // the KeyboardInterrupt it was sent: said below
				}
				send(protocol.CodeEvent{Type: protocol.CodeEventError, Error: errorOf(m.Content)})
			case "status":
				idle = idle || m.Content["execution_state"] == "idle"
			}
		case m := <-k.shellIn:
			if m.parentID() == id && m.msgType() == "execute_reply" {
				replied = true
				if n, ok := m.Content["execution_count"].(float64); ok {
					count = int(n)
				}
			}
		case <-expire:
			expire = nil
			interrupted = fmt.Sprintf("the code ran longer than its timeout (%s) and was interrupted", timeout)
			k.interrupt()
			grace = time.After(interruptGrace)
		case <-ctx.Done():
			if interrupted == "" {
				interrupted = "the run was cancelled and the code interrupted"
				k.interrupt()
				grace = time.After(interruptGrace)
			}
		case <-grace:
			k.close()
		case <-k.dead:
			return count, errKernelDied
		}
	}
	if interrupted != "" {
		send(protocol.CodeEvent{Type: protocol.CodeEventError, Error: &protocol.CodeError{
			Name: protocol.CodeErrorTimeout, Value: interrupted}})
	}
	return count, emitErr
}

// drain drops messages already received.
func (k *jupyterKernel) drain() {
	for {
		select {
		case <-k.iopubIn:
		case <-k.shellIn:
		default:
			return
		}
	}
}

var errKernelDied = errors.New("the kernel ended during the run (out of memory, or the code ended its process); the next run starts a fresh one, without the earlier state")

// ansi matches terminal colour codes, which some tracebacks keep.
var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

func errorOf(content map[string]any) *protocol.CodeError {
	e := &protocol.CodeError{}
	e.Name, _ = content["ename"].(string)
	e.Value, _ = content["evalue"].(string)
	if tb, ok := content["traceback"].([]any); ok {
		for i, line := range tb {
			s, _ := line.(string)
			if i > 0 {
				e.Traceback += "\n"
			}
			e.Traceback += ansi.ReplaceAllString(s, "")
		}
	}
	return e
}

// freePorts finds n free loopback ports (the kernel binds them next).
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, errors.Wrap(err, "finding ports for the kernel")
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
