package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// netnsPair makes a network namespace of the test's own, joined to this
// one by a veth pair: the host end is hostIP, the namespace's end nsIP.
// Both go when the test ends.
func netnsPair(t *testing.T) (ns, hostIP, nsIP string) {
	ns = fmt.Sprintf("qs-tls-%d", os.Getpid())
	hostIP, nsIP = "10.213.7.1", "10.213.7.2"
	run := func(args ...string) {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v %s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run("link", "add", "qsv"+ns[len(ns)-4:], "type", "veth", "peer", "name", "qsp"+ns[len(ns)-4:])
	t.Cleanup(func() { exec.Command("ip", "link", "del", "qsv"+ns[len(ns)-4:]).Run() })
	run("link", "set", "qsp"+ns[len(ns)-4:], "netns", ns)
	run("addr", "add", hostIP+"/30", "dev", "qsv"+ns[len(ns)-4:])
	run("link", "set", "qsv"+ns[len(ns)-4:], "up")
	run("-n", ns, "addr", "add", nsIP+"/30", "dev", "qsp"+ns[len(ns)-4:])
	run("-n", ns, "link", "set", "qsp"+ns[len(ns)-4:], "up")
	run("-n", ns, "link", "set", "lo", "up")
	return ns, hostIP, nsIP
}

// selfSigned writes a certificate for ip and its key, and returns the
// paths and a pool that trusts it.
func selfSigned(t *testing.T, ip string) (cert, key string, pool *x509.CertPool) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "quicksand test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP(ip)}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	kb, _ := x509.MarshalECPrivateKey(priv)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	parsed, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(parsed)
	return cert, key, pool
}

// Off the loopback (an address in a namespace of the test's own), the
// server refuses to start without TLS, and with it answers only TLS: a
// client that checks the certificate gets in with its key, clear text
// gets nothing.
func TestTLSOffTheLoopback(t *testing.T) {
	ns, hostIP, nsIP := netnsPair(t)
	keys := filepath.Join(t.TempDir(), "keys")
	os.WriteFile(keys, []byte(keyA+"\n"), 0o600)
	addr := nsIP + ":7443"
	clear := exec.Command("ip", "netns", "exec", ns, quicksandBin, "serve", "--listen", addr, "--keys", keys, "--data", t.TempDir())
	if out, err := clear.CombinedOutput(); err == nil || !strings.Contains(string(out), "--tls-cert") {
		t.Fatalf("clear text off the loopback: %v %s", err, out)
	}
	cert, key, pool := selfSigned(t, nsIP)
	srv := exec.Command("ip", "netns", "exec", ns, quicksandBin, "serve", "--listen", addr, "--keys", keys, "--data", t.TempDir(),
		"--tls-cert", cert, "--tls-key", key)
	log := &lockedLog{}
	srv.Stderr = writerFunc(func(p []byte) (int, error) { log.WriteString(string(p)); return len(p), nil })
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	get := func(c *http.Client, url, key string) (int, string, error) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := c.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	var status int
	var body string
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if status, body, err = get(client, "https://"+addr+"/v1/capacity", keyA); err == nil {
			break
		}
	}
	if status != 200 || !strings.Contains(body, "memory_total") {
		t.Fatalf("over TLS from %s: %d %s %v\n%s", hostIP, status, body, err, log)
	}
	if status, _, _ := get(client, "https://"+addr+"/v1/capacity", wrongKey); status != 401 {
		t.Fatalf("a wrong key over TLS: %d", status)
	}
	if _, _, err := get(&http.Client{Timeout: 5 * time.Second}, "https://"+addr+"/v1/health", ""); err == nil {
		t.Fatal("a client that does not trust the certificate got in")
	}
	if status, body, err := get(&http.Client{Timeout: 5 * time.Second}, "http://"+addr+"/v1/capacity", keyA); err == nil && status == 200 {
		t.Fatalf("clear text on the TLS port: %d %s", status, body)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
