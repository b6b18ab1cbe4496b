package engine

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quicksand-go/quicksand/engine/internal/agent"
)

// Another local user looks for the token of every kind of sandbox (a
// template being built, a warm clone, a cold boot, a save) wherever it can:
// process command lines and environments, files, sockets. It finds none,
// and drives none of the agents it can reach.
func TestAnotherUserCannotReachASandbox(t *testing.T) {
	uid, gid := attackerIdentity(t)
	base := attackBase(t)
	saves := filepath.Join(base, "saves")
	os.Mkdir(saves, 0o755)
	cfg := Config{WorkDir: filepath.Join(base, "work"), TemplateDir: filepath.Join(base, "templates")}

	// While the template is being built.
	type started struct {
		sb  *Sandbox
		err error
	}
	done := make(chan started, 1)
	go func() {
		sb, err := Start(context.Background(), cfg)
		done <- started{sb, err}
	}()
	var reports []attackReport
	var warm *Sandbox
	for warm == nil {
		reports = append(reports, runAttacker(t, base, uid, gid))
		select {
		case s := <-done:
			if s.err != nil {
				t.Fatalf("warm start: %v", s.err)
			}
			warm = s.sb
			t.Cleanup(func() { warm.Stop(context.Background()) })
		case <-time.After(200 * time.Millisecond):
		}
	}
	if !slices.ContainsFunc(reports, func(r attackReport) bool { return len(r.Ports) > 0 }) {
		t.Errorf("no attack ran while the template VM was up (%d attacks)", len(reports))
	}

	coldCfg := cfg
	coldCfg.ColdBoot = true
	cold := startSandbox(t, coldCfg)
	saveDir := filepath.Join(saves, "s1")
	if _, err := warm.Save(context.Background(), saveDir); err != nil {
		t.Fatal(err)
	}
	last := runAttacker(t, base, uid, gid)
	reports = append(reports, last)

	// Templates and saves keep no token: their agents seal themselves
	// (seal.go), so none would open a clone (TestClonesAcceptNoTokenFromGuestRAM).
	secrets := map[string]string{"cold": cold.token, "warm clone": warm.token}
	metas, _ := filepath.Glob(filepath.Join(cfg.TemplateDir, "*", templateMeta))
	if len(metas) == 0 {
		t.Fatal("no template was built")
	}
	for _, m := range metas {
		if raw, _ := os.ReadFile(m); strings.Contains(string(raw), `"token"`) {
			t.Errorf("%s keeps a token: %s", m, raw)
		}
	}
	if _, err := os.Stat(filepath.Join(saveDir, saveToken)); err == nil {
		t.Errorf("the save keeps a token file")
	}

	// The attacker could look: it read QEMU's command line and reached the
	// agents, which refused it.
	if !last.SawQEMU || len(last.Ports) < 2 || !last.ReachedAgent {
		t.Fatalf("the attacker did not get as far as it should: saw QEMU %v, ports %v, reached an agent %v", last.SawQEMU, last.Ports, last.ReachedAgent)
	}
	private := []string{cfg.WorkDir, cfg.TemplateDir, saveDir}
	for i, r := range reports {
		for what, secret := range secrets {
			if slices.Contains(r.Candidates, secret) {
				t.Errorf("attack %d found the %s token", i, what)
			}
		}
		if len(r.Executed) > 0 {
			t.Errorf("attack %d ran commands: %v", i, r.Executed)
		}
		if len(r.Sockets) > 0 {
			t.Errorf("attack %d connected to sockets: %v", i, r.Sockets)
		}
		for _, f := range r.Readable {
			for _, p := range private {
				if strings.HasPrefix(f, p+"/") {
					t.Errorf("attack %d could read %s", i, f)
				}
			}
		}
	}
}

// A work folder that another user made first (at the predictable default
// $TMPDIR/quicksand-<uid>, say), or that others may write to, is refused
// before anything starts.
func TestForeignWorkDirIsRefused(t *testing.T) {
	uid, gid := attackerIdentity(t)
	base := attackBase(t)
	theirs := filepath.Join(base, "theirs")
	os.Mkdir(theirs, 0o777)
	os.Chown(theirs, int(uid), int(gid))
	open := filepath.Join(base, "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	for dir, want := range map[string]string{theirs: "belongs to another user", open: "writable by other users"} {
		_, err := Start(context.Background(), Config{WorkDir: dir})
		if KindOf(err) != KindBootFailed || !strings.Contains(err.Error(), want) {
			t.Errorf("work folder %s: %v", dir, err)
		}
		_, err = Start(context.Background(), Config{TemplateDir: dir})
		if KindOf(err) != KindBootFailed || !strings.Contains(err.Error(), want) {
			t.Errorf("template folder %s: %v", dir, err)
		}
	}
}

// A warm clone whose agent server restarts (killed here, as the OOM killer
// or a crash would) comes back accepting its own token and never its
// template's, which every clone shares.
func TestRestartedAgentKeepsTheClonesToken(t *testing.T) {
	cfg := Config{TemplateDir: t.TempDir()}
	sb := startSandbox(t, cfg)
	if !sb.timing.Warm {
		sb.Stop(context.Background())
		sb = startSandbox(t, cfg)
	}
	if !sb.timing.Warm {
		t.Fatal("the second start was not warm")
	}
	tpls := templatesIn(t, cfg.TemplateDir)
	if len(tpls) != 1 {
		t.Fatalf("%d templates", len(tpls))
	}
	// The server is the shell's parent; init restarts it.
	sb.Execute(context.Background(), ExecRequest{Command: "kill -9 $PPID", Timeout: 5 * time.Second})
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var r *ExecResult
		if r, err = sb.Execute(context.Background(), ExecRequest{Command: "echo back"}); err == nil && string(r.Stdout) == "back\n" {
			break
		}
	}
	if err != nil {
		t.Fatalf("the sandbox did not come back with its own token: %v", err)
	}
	// No other token-shaped string in the restarted agent's memory (the
	// template's boot token among them) opens it.
	stale := 0
	for _, tok := range harvestAgentTokens(t, sb) {
		if tok == sb.token {
			continue
		}
		stale++
		c := agent.New(sb.AgentAddr(), tok)
		var se *agent.StatusError
		if err := c.Ping(context.Background()); !errors.As(err, &se) || se.Status != http.StatusUnauthorized {
			t.Errorf("a token from the agent's memory after a restart: %v", err)
		}
		c.Close()
	}
	if stale == 0 {
		t.Error("no token-shaped string but its own in the agent's memory: nothing was tried")
	}
}

// A command run as an ordinary guest user cannot read the sandbox's token
// (fw_cfg, the agent's kept copy, the kernel command line, init's
// environment) and so cannot drive the agent as root from inside; it is
// not root.
func TestGuestUserCannotTakeTheToken(t *testing.T) {
	sb := sharedSandbox(t)
	probe := `id -un; head -c1 /etc/shadow >/dev/null 2>&1 && echo READ-SHADOW
cat /proc/cmdline /proc/1/environ /run/quicksand/token /sys/firmware/qemu_fw_cfg/by_name/opt/quicksand/token/raw 2>/dev/null
grep -rsa "` + sb.token[:16] + `" /run /tmp /proc/cmdline /sys/firmware 2>/dev/null | head -c 200`
	r, err := sb.Execute(context.Background(), ExecRequest{Command: probe, User: "nobody", Timeout: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(r.Stdout), "nobody\n") || strings.Contains(string(r.Stdout), "READ-SHADOW") {
		t.Fatalf("not unprivileged: %q", r.Stdout)
	}
	if strings.Contains(string(r.Stdout), sb.token[:16]) {
		t.Fatalf("a guest user read the token: %q", r.Stdout)
	}
	// As root, the same files hold it: the probe looked in the right place.
	r = run(t, sb, ExecRequest{Command: "cat /run/quicksand/token"})
	if string(r.Stdout) != sb.token {
		t.Fatalf("root's copy of the token: %q", r.Stdout)
	}
	if _, err := sb.Execute(context.Background(), ExecRequest{Command: "id", User: "no-such-user"}); KindOf(err) != KindBadRequest {
		t.Fatalf("unknown user: %v", err)
	}
}

// A save name is a name: it cannot climb out of the image folder or make
// folders on its way; a path must look like one, and its parent must exist.
func TestSaveNamesAreNotPaths(t *testing.T) {
	sb := sharedSandbox(t)
	cwd, _ := os.Getwd()
	for _, name := range []string{"../../qs-escape/x", "a/b", ".hidden", "x\x00y"} {
		_, err := sb.Save(context.Background(), name)
		if KindOf(err) != KindBadRequest || !strings.Contains(err.Error(), "not a valid name") {
			t.Errorf("save %q: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(cwd, "..", "..", "qs-escape")); err == nil {
		t.Errorf("a save name made a folder outside the image folder")
	}
	missing := filepath.Join(t.TempDir(), "no", "such", "parent")
	if _, err := sb.Save(context.Background(), missing); err == nil {
		t.Errorf("a save made the missing parents of %s", missing)
	}
	if _, err := os.Stat(filepath.Dir(missing)); err == nil {
		t.Errorf("the missing parent folder was made")
	}
	if _, err := Start(context.Background(), Config{Image: "../../etc"}); KindOf(err) != KindInvalidConfig {
		t.Errorf("image name ../../etc: %v", err)
	}
}

// Strangers connecting to the agent's port while a template is built (any
// local user can) do not break the build: the port forward is removed
// before the VM is frozen, and a connection without a token is closed.
func TestTemplateBuildWithStrangersConnecting(t *testing.T) {
	dir := t.TempDir()
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		connections := 0
		defer func() { done <- connections }()
		var idle []net.Conn
		defer func() {
			for _, c := range idle {
				c.Close()
			}
		}()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
			for _, p := range procs {
				raw, _ := os.ReadFile(p)
				if !strings.Contains(string(raw), dir) {
					continue
				}
				for _, m := range hostForward.FindAllStringSubmatch(string(raw), -1) {
					c, err := net.DialTimeout("tcp", "127.0.0.1:"+m[1], time.Second)
					if err != nil {
						continue
					}
					connections++
					if connections%2 == 0 {
						idle = append(idle, c) // held open, saying nothing
						continue
					}
					c.SetDeadline(time.Now().Add(2 * time.Second))
					c.Write([]byte("GET /ping HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\n\r\n"))
					c.Read(make([]byte, 512))
					c.Close()
				}
			}
		}
	}()
	sb, err := Start(context.Background(), Config{TemplateDir: dir})
	close(stop)
	connections := <-done
	if err != nil {
		t.Fatalf("template build with %d strangers' connections: %v", connections, err)
	}
	defer sb.Stop(context.Background())
	if connections == 0 {
		t.Fatal("no stranger got to connect: the test proved nothing")
	}
	if !sb.timing.Warm {
		t.Fatal("not resumed from the template")
	}
	if r := run(t, sb, ExecRequest{Command: "echo fine"}); string(r.Stdout) != "fine\n" {
		t.Fatalf("%+v", r)
	}
	clone := startSandbox(t, Config{TemplateDir: dir})
	if r := run(t, clone, ExecRequest{Command: "echo fine"}); string(r.Stdout) != "fine\n" {
		t.Fatalf("%+v", r)
	}
	t.Logf("%d connections from strangers during the build", connections)
}
