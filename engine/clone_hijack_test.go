package engine

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The attack on warm starts and saves (issue 33, item 4): guest root in one
// warm clone harvests every token-shaped string from its agent's memory
// (the template's token was among them, the same in every clone until it
// is rekeyed), and a local process watches for new QEMUs, reads each one's
// agent port from its command line, as any local user can, and fires every
// harvested token at it while it resumes. The clones must accept nothing
// before the engine rekeys them; the same for resumes of a save, whose
// token root in the saved sandbox knows. The test fails unless the
// attacker's requests reached the new clones' agents before their start
// returned (its stage), and fails if any ran a command.
func TestClonesAcceptNoTokenFromGuestRAM(t *testing.T) {
	base := t.TempDir()
	cfg := Config{WorkDir: filepath.Join(base, "work"), TemplateDir: filepath.Join(base, "templates")}
	first := startSandbox(t, cfg) // builds the template; itself a warm clone
	second := startSandbox(t, cfg)

	// What two clones' agents both hold in memory, and is neither's own
	// token, came from the template.
	inSecond := map[string]bool{}
	for _, tok := range harvestAgentTokens(t, second) {
		inSecond[tok] = true
	}
	var stolen []string
	for _, tok := range harvestAgentTokens(t, first) {
		if inSecond[tok] && tok != first.token && tok != second.token {
			stolen = append(stolen, tok)
		}
	}
	if len(stolen) == 0 {
		t.Fatal("guest root found no token shared by two clones' agents: the test did not get to its stage")
	}
	t.Logf("guest root found %d token-shaped strings in both clones' agents", len(stolen))
	theirs := map[int]bool{first.port: true, second.port: true}
	attack := func(t *testing.T, start func() *Sandbox) {
		a := startPortAttack(stolen, theirs)
		sb := start()
		startedAt := time.Now()
		theirs[sb.port] = true
		// Keep at it a moment after the start: the clone is rekeyed by now.
		time.Sleep(300 * time.Millisecond)
		a.stop()
		if ran := a.executed(sb.port); len(ran) > 0 {
			t.Errorf("a stolen token ran a command in the new sandbox: %v", ran)
		}
		if out := mustSh(t, sb, "cat /tmp/pwned 2>/dev/null; echo end"); out != "end\n" {
			t.Errorf("the attacker's command left its mark: %q", out)
		}
		if !a.answeredBefore(sb.port, startedAt) {
			t.Errorf("the attack never reached port %d's agent before the start returned (%s): the test did not get to its stage", sb.port, a.summary(sb.port))
		}
	}
	for i := range 3 {
		t.Run(fmt.Sprintf("warm start %d", i+1), func(t *testing.T) {
			attack(t, func() *Sandbox { return startSandbox(t, cfg) })
		})
	}

	saveDir := filepath.Join(base, "save")
	if _, err := first.Save(context.Background(), saveDir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(saveDir, saveToken)); err == nil {
		t.Errorf("the save keeps a token file: nothing should open it but the resumer's own token")
	}
	stolen = []string{first.token} // root in the saved sandbox has it
	for i := range 2 {
		t.Run(fmt.Sprintf("resume of a save %d", i+1), func(t *testing.T) {
			saved := cfg
			saved.Image = saveDir
			attack(t, func() *Sandbox { return startSandbox(t, saved) })
		})
	}
	// The saved sandbox itself goes on with its own token.
	if out := mustSh(t, first, "echo still mine"); out != "still mine\n" {
		t.Fatalf("after the save: %q", out)
	}
}

// harvestAgentTokens reads, as guest root, every readable mapping of the
// agent server's memory and returns the token-shaped strings in it.
func harvestAgentTokens(t *testing.T, sb *Sandbox) []string {
	t.Helper()
	script := `
init=$(readlink /proc/1/exe)
for p in /proc/[0-9]*; do
  [ "$(readlink $p/exe)" = "$init" ] && [ "$(awk '{print $4}' $p/stat)" = 1 ] && pid=${p#/proc/}
done
[ -n "$pid" ] || { echo "no agent server found" >&2; exit 1; }
grep ' r' /proc/$pid/maps | while read range perms rest; do
  start=$((0x${range%-*} / 4096)); end=$((0x${range#*-} / 4096))
  dd if=/proc/$pid/mem bs=4096 skip=$start count=$((end - start)) 2>/dev/null
done | grep -aoE '[0-9a-f]{64}' | sort -u`
	out := mustSh(t, sb, script)
	return strings.Fields(out)
}

// portAttack fires tokens at every agent port it finds on QEMU command
// lines (except those it is told are not new), over and over, until
// stopped.
type portAttack struct {
	done    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	answers map[int][]attempt
}

type attempt struct {
	at     time.Time
	status int
	token  string
}

var agentForward = regexp.MustCompile(`hostfwd=tcp:127\.0\.0\.1:(\d+)-`)

func startPortAttack(tokens []string, skip map[int]bool) *portAttack {
	a := &portAttack{done: make(chan struct{}), answers: map[int][]attempt{}}
	skipped := map[int]bool{}
	for p := range skip {
		skipped[p] = true
	}
	// A new try every few milliseconds, each left to finish in its own
	// time: a connection made while QEMU still loads the state is
	// delivered when the guest runs, ahead of the engine's own.
	client := &http.Client{Timeout: 3 * time.Second}
	try := func(port int, tok string) {
		defer a.wg.Done()
		req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/execute", port),
			strings.NewReader(`{"command":"echo pwned > /tmp/pwned; id -u"}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			return
		}
		resp.Body.Close()
		a.mu.Lock()
		a.answers[port] = append(a.answers[port], attempt{time.Now(), resp.StatusCode, tok})
		a.mu.Unlock()
	}
	attackPort := func(port int) {
		defer a.wg.Done()
		for i := 0; ; i++ {
			select {
			case <-a.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			a.wg.Add(1)
			go try(port, tokens[i%len(tokens)])
		}
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		for {
			procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
			for _, p := range procs {
				raw, _ := os.ReadFile(p)
				for _, m := range agentForward.FindAllSubmatch(raw, -1) {
					port, _ := strconv.Atoi(string(m[1]))
					if !skipped[port] {
						skipped[port] = true
						a.wg.Add(1)
						go attackPort(port)
					}
				}
			}
			select {
			case <-a.done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return a
}

func (a *portAttack) stop() {
	close(a.done)
	a.wg.Wait()
}

// executed lists the tokens that ran a command on port.
func (a *portAttack) executed(port int) []string {
	var ran []string
	for _, at := range a.answers[port] {
		if at.status == http.StatusOK {
			ran = append(ran, at.token[:8]+"…")
		}
	}
	return ran
}

// answeredBefore says whether the agent on port answered any attempt
// before t.
func (a *portAttack) answeredBefore(port int, t time.Time) bool {
	for _, at := range a.answers[port] {
		if at.at.Before(t) {
			return true
		}
	}
	return false
}

func (a *portAttack) summary(port int) string {
	count := map[int]int{}
	for _, at := range a.answers[port] {
		count[at.status]++
	}
	return fmt.Sprintf("answers by status: %v", count)
}
