package engine

// The attacker: this test binary run again as an ordinary local user
// (attackerUser), which looks for any sandbox's token wherever such a user
// can look, and then tries to drive every agent port it can find. The tests
// in security_test.go start sandboxes, run it, and check its report.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	attackerUser = "qs-attacker"
	// attackerEnv, set to the folders to search (':'-separated), makes
	// this binary the attacker instead of running tests.
	attackerEnv = "QUICKSAND_TEST_ATTACK_ROOTS"
)

// attackReport is what the attacker saw and managed.
type attackReport struct {
	CmdlinesRead int      // other processes' command lines it could read
	SawQEMU      bool     // one of them was a QEMU
	Candidates   []string // every token-like string it came across
	Readable     []string // files under the roots it could open
	Sockets      []string // unix sockets under the roots it could connect to
	Ports        []int    // agent ports found on QEMU command lines
	ReachedAgent bool     // an agent answered it (with a refusal)
	Executed     []string // "port token" that ran a command: a break-in
}

var tokenLike = regexp.MustCompile(`[0-9a-f]{32,}`)
var hostForward = regexp.MustCompile(`hostfwd=tcp:127\.0\.0\.1:(\d+)-`)

// attack runs as the attacker and prints its report as JSON.
func attack(roots []string) int {
	var r attackReport
	seen := map[string]bool{}
	harvest := func(b []byte) {
		for _, m := range tokenLike.FindAll(b, -1) {
			if s := string(m); !seen[s] {
				seen[s] = true
				r.Candidates = append(r.Candidates, s)
			}
		}
	}
	ports := map[int]bool{}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		if raw, err := os.ReadFile(p + "/cmdline"); err == nil && len(raw) > 0 {
			r.CmdlinesRead++
			line := string(bytes.ReplaceAll(raw, []byte{0}, []byte{' '}))
			if strings.Contains(line, "qemu-system") {
				r.SawQEMU = true
				for _, m := range hostForward.FindAllStringSubmatch(line, -1) {
					n, _ := strconv.Atoi(m[1])
					ports[n] = true
				}
			}
			harvest(raw)
		}
		if raw, err := os.ReadFile(p + "/environ"); err == nil {
			harvest(raw)
		}
	}
	for _, root := range roots {
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if d.Type()&fs.ModeSocket != 0 {
				if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
					c.Close()
					r.Sockets = append(r.Sockets, path)
				}
				return nil
			}
			if !d.Type().IsRegular() || filepath.Base(path) == "attacker" {
				return nil
			}
			f, err := os.Open(path)
			if err != nil {
				return nil
			}
			defer f.Close()
			r.Readable = append(r.Readable, path)
			raw, _ := io.ReadAll(io.LimitReader(f, 64<<20))
			harvest(raw)
			return nil
		})
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for port := range ports {
		r.Ports = append(r.Ports, port)
		try := func(token string) bool {
			req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/execute", port), strings.NewReader(`{"command":"id -u"}`))
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := client.Do(req)
			if err != nil {
				return false
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				r.ReachedAgent = true
			}
			return resp.StatusCode == http.StatusOK
		}
		try("guess")
		for i, c := range r.Candidates {
			if i == 500 {
				break
			}
			if try(c) {
				r.Executed = append(r.Executed, fmt.Sprintf("%d %s", port, c))
			}
		}
	}
	json.NewEncoder(os.Stdout).Encode(r)
	return 0
}

// attackerIdentity creates the attacker's account if needed (the tests run
// as root, as CI does) and returns its uid and gid.
func attackerIdentity(t *testing.T) (uint32, uint32) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test acts as another local user, which it creates: run it as root (as CI does)")
	}
	u, err := user.Lookup(attackerUser)
	if err != nil {
		out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", attackerUser).CombinedOutput()
		if err != nil {
			t.Fatalf("creating the user %s: %v %s", attackerUser, err, out)
		}
		if u, err = user.Lookup(attackerUser); err != nil {
			t.Fatal(err)
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uint32(uid), uint32(gid)
}

// attackBase makes a folder every user can enter, so that what keeps the
// attacker out of the sandboxes' folders inside it is the library's own
// care, and copies this binary there for the attacker to run.
func attackBase(t *testing.T) string {
	t.Helper()
	base, err := os.MkdirTemp("", "qs-attack-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "attacker"), self, 0o755); err != nil {
		t.Fatal(err)
	}
	return base
}

// runAttacker runs one attack as the attacker on the folders under base.
func runAttacker(t *testing.T, base string, uid, gid uint32) attackReport {
	t.Helper()
	cmd := exec.Command(filepath.Join(base, "attacker"))
	cmd.Env = []string{attackerEnv + "=" + base, "PATH=/usr/bin:/bin"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the attacker failed: %v\n%s", err, stderr.String())
	}
	var r attackReport
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("the attacker's report: %v\n%s", err, out)
	}
	return r
}
