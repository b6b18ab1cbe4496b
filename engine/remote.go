package engine

// The remote client: a Sandbox whose methods go to a `quicksand serve`
// server (docs/server-openapi.yaml, internal/serverapi) instead of a VM of
// this process. This file is its HTTP side: where the server is, the
// connection to it, the API key, and the server's errors turned back into
// the engine's.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pkg/errors"

	"github.com/quicksand-go/quicksand/internal/serverapi"
)

// The environment's server and key, used when a Config or RemoteOptions
// names no server.
const (
	EnvServer = "QUICKSAND_SERVER"
	EnvAPIKey = "QUICKSAND_API_KEY"
)

const (
	// remoteConnectTimeout bounds setting up a connection to the server
	// (dial and TLS handshake); what follows is bounded by the call.
	remoteConnectTimeout = 10 * time.Second
	// remoteSmallAnswer bounds a JSON answer that carries no output or
	// listing: the server is not trusted to end what it sends.
	remoteSmallAnswer = 4 << 20
	// remoteListAnswer bounds a listing (a folder, processes, sandboxes).
	remoteListAnswer = 64 << 20
	// remoteErrorBody bounds the body of an error answer.
	remoteErrorBody = 64 << 10
)

// RemoteOptions say which server to talk to.
type RemoteOptions struct {
	// Server is http://host:port (loopback only: the key would cross the
	// network in clear), https://host:port (the system's roots, or
	// $SSL_CERT_FILE, vouch for its certificate) or unix:/path/to.sock.
	// Empty: $QUICKSAND_SERVER.
	Server string
	// APIKey is sent as "Authorization: Bearer KEY". Empty, with Server
	// empty too: $QUICKSAND_API_KEY. The environment's key goes only to the
	// environment's server, never to one the caller named.
	APIKey string
}

// resolved fills Server and APIKey from the environment as documented.
func (o RemoteOptions) resolved() RemoteOptions {
	if o.Server == "" {
		o.Server = os.Getenv(EnvServer)
		if o.APIKey == "" {
			o.APIKey = os.Getenv(EnvAPIKey)
		}
	}
	return o
}

// check says what is wrong with resolved options, naming the field.
func (o RemoteOptions) check() error {
	bad := func(field, format string, args ...any) error {
		return newError(KindInvalidConfig, nil, "config field %s: %s", field, fmt.Sprintf(format, args...))
	}
	if o.Server == "" {
		if o.APIKey != "" {
			return bad("api_key", "an API key needs a server (config field server, or $%s)", EnvServer)
		}
		return bad("server", "no server given (config field server, or $%s)", EnvServer)
	}
	for _, c := range o.APIKey {
		if c <= ' ' || c > '~' {
			// The key itself never goes into a message.
			return bad("api_key", "an API key is printable ASCII without spaces")
		}
	}
	if _, err := parseServer(o.Server); err != nil {
		return bad("server", "%v", err)
	}
	return nil
}

// serverAddr is a parsed server address.
type serverAddr struct {
	base   string // scheme, host and path prefix of every request's URL
	socket string // a Unix socket's path, "" for TCP
	https  bool
}

// parseServer checks a server address: http://host:port,
// https://host:port (an optional path prefix for a server behind a
// proxy) or unix:/path.
func parseServer(s string) (serverAddr, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return serverAddr{}, errors.Errorf("%q contains a NUL byte", s)
	}
	if rest, ok := strings.CutPrefix(s, "unix:"); ok {
		if strings.HasPrefix(rest, "//") {
			rest = strings.TrimPrefix(rest, "//") // unix:///path
		}
		if rest == "" {
			return serverAddr{}, errors.Errorf("%q names no socket (unix:/path/to.sock)", s)
		}
		return serverAddr{base: "http://quicksand", socket: rest}, nil
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return serverAddr{}, errors.Errorf("%q is not http://host:port, https://host:port or unix:/path/to.sock", s)
	case u.Scheme != "http" && u.Scheme != "https":
		return serverAddr{}, errors.Errorf("%q: the scheme must be http, https or unix", s)
	case u.Host == "" || u.Hostname() == "":
		return serverAddr{}, errors.Errorf("%q names no host", s)
	case u.User != nil:
		return serverAddr{}, errors.Errorf("%q: credentials go in api_key, not in the address", u.Redacted())
	case u.RawQuery != "" || u.Fragment != "":
		return serverAddr{}, errors.Errorf("%q: an address takes no query or fragment", s)
	case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
		return serverAddr{}, errors.Errorf("%q: http:// would send the API key and everything else unencrypted across the network; plain http is for a loopback server only (127.0.0.1, ::1, localhost): use https://", s)
	}
	return serverAddr{base: u.Scheme + "://" + u.Host + strings.TrimSuffix(u.EscapedPath(), "/"), https: u.Scheme == "https"}, nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// remoteClient talks to one server with one key.
type remoteClient struct {
	server string // as the caller gave it, for messages
	base   string
	key    string
	http   *http.Client
}

// newRemoteClient checks o (resolved) and makes its client.
func newRemoteClient(o RemoteOptions) (*remoteClient, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	addr, _ := parseServer(o.Server)
	return &remoteClient{server: o.Server, base: addr.base, key: o.APIKey, http: remoteHTTP(o.Server, addr)}, nil
}

// remoteClients keeps one HTTP client per server, so that sandboxes of
// one server share its kept-alive connections (a command's round trip is
// then one request on a warm connection).
var remoteClients struct {
	sync.Mutex
	m map[string]*http.Client
}

func remoteHTTP(server string, addr serverAddr) *http.Client {
	remoteClients.Lock()
	defer remoteClients.Unlock()
	if c := remoteClients.m[server]; c != nil {
		return c
	}
	dialer := &net.Dialer{Timeout: remoteConnectTimeout, KeepAlive: 15 * time.Second}
	tr := &http.Transport{
		DialContext:         dialer.DialContext,
		TLSHandshakeTimeout: remoteConnectTimeout,
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12},
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		// Output streams as it comes; a compressed stream is held back.
		DisableCompression: true,
	}
	if addr.https {
		tr.Proxy = http.ProxyFromEnvironment // TLS goes end to end through it
	}
	if addr.socket != "" {
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", addr.socket)
		}
	}
	c := &http.Client{
		Transport: tr,
		// A redirect is no answer of this API; following one could carry
		// the key elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if remoteClients.m == nil {
		remoteClients.m = map[string]*http.Client{}
	}
	remoteClients.m[server] = c
	return c
}

// route fills a route's {id} and {process}.
func route(pattern, id string, process ...string) string {
	p := strings.Replace(pattern, "{id}", url.PathEscape(id), 1)
	if len(process) > 0 {
		p = strings.Replace(p, "{process}", url.PathEscape(process[0]), 1)
	}
	return p
}

// do sends one request and returns a 2xx answer; any other is the
// server's error as an *Error. A failure to talk to the server is
// returned as it is, for remoteCall to name.
func (c *remoteClient) do(ctx context.Context, method, path string, query url.Values, body io.Reader, contentType string) (*http.Response, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, errors.Wrap(err, "making the request")
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	// Streams come as records rather than Server-Sent Events when asked
	// (serverapi.StreamType); other answers are JSON whatever this says.
	req.Header.Set("Accept", serverapi.StreamType+", text/event-stream;q=0.5, application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is said once, by the message
		}
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, remoteErrorBody))
		return nil, c.statusError(resp.StatusCode, raw)
	}
	return resp, nil
}

// call sends in (JSON, or nothing when nil) and decodes the answer, at
// most limit bytes, into out (nil: the answer is not read).
func (c *remoteClient) call(ctx context.Context, method, path string, query url.Values, in, out any, limit int64) error {
	var body io.Reader
	contentType := ""
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return errors.Wrap(err, "encoding the request")
		}
		body, contentType = bytes.NewReader(raw), "application/json"
	}
	resp, err := c.do(ctx, method, path, query, body, contentType)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	return decodeLimited(resp.Body, out, limit)
}

// decodeLimited decodes one JSON value of at most limit bytes.
func decodeLimited(r io.Reader, out any, limit int64) error {
	lr := &io.LimitedReader{R: r, N: limit + 1}
	err := json.NewDecoder(lr).Decode(out)
	if lr.N <= 0 {
		return errors.Errorf("the server's answer is larger than %d bytes", limit)
	}
	return errors.Wrap(err, "reading the server's answer")
}

// kindByCode are the kinds a server may name: the engine's own numbers
// (11 and 12 are the C ABI's and become KindUnknown).
var kindByCode = func() map[int]Kind {
	m := map[int]Kind{}
	for k := range kindNames {
		m[int(k)] = k
	}
	return m
}()

// kindByStatus is the kind of an error answer that does not say its own.
var kindByStatus = map[int]Kind{
	http.StatusBadRequest:            KindBadRequest,
	http.StatusUnauthorized:          KindAuth,
	http.StatusForbidden:             KindPermission,
	http.StatusNotFound:              KindNotFound,
	http.StatusConflict:              KindNotRunning,
	http.StatusServiceUnavailable:    KindResource,
	499:                              KindCancelled,
	http.StatusGatewayTimeout:        KindBootTimeout,
	http.StatusRequestEntityTooLarge: KindBadRequest,
}

// statusError turns an error answer into the engine's error: the kind the
// server names, with its message.
func (c *remoteClient) statusError(status int, raw []byte) *Error {
	if status == http.StatusUnauthorized {
		return newError(KindAuth, nil, "the server %s refused the API key", c.server)
	}
	var body serverapi.Error
	if json.Unmarshal(raw, &body) == nil && body.Error.Message != "" {
		kind := kindByCode[body.Error.Code]
		if kind == 0 {
			kind = KindUnknown
		}
		return &Error{Kind: kind, Msg: cleanMessage(body.Error.Message)}
	}
	kind := kindByStatus[status]
	if kind == 0 {
		kind = KindUnknown
	}
	text := strings.TrimSpace(string(raw))
	if text == "" {
		text = "and said nothing more"
	}
	return newError(kind, nil, "the server %s answered %d %s: %s", c.server, status, http.StatusText(status), cleanMessage(text))
}

// errorEvent is a stream's error event as an *Error: its data is the
// error object, {"error": {...}} or the inner {...}.
func (c *remoteClient) errorEvent(data string) *Error {
	var outer serverapi.Error
	if json.Unmarshal([]byte(data), &outer) == nil && outer.Error.Message != "" {
		return c.statusError(http.StatusInternalServerError, []byte(data))
	}
	var inner serverapi.ErrorBody
	if json.Unmarshal([]byte(data), &inner) == nil && inner.Message != "" {
		raw, _ := json.Marshal(serverapi.Error{Error: inner})
		return c.statusError(http.StatusInternalServerError, raw)
	}
	return newError(KindTransport, nil, "the server %s ended the stream with an error it did not say: %s", c.server, cleanMessage(data))
}

// maxServerMessage bounds a message taken from the server.
const maxServerMessage = 64 << 10

// cleanMessage is a message from the server as the engine's own messages
// are: bounded, and without a NUL byte (it may become a C string).
func cleanMessage(s string) string {
	if len(s) > maxServerMessage {
		s = s[:maxServerMessage] + "..."
	}
	return strings.ReplaceAll(s, "\x00", `\x00`)
}
