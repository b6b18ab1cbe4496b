package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cli builds this command into a temporary folder.
func cli(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "quicksand")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building the CLI: %v\n%s", err, out)
	}
	return bin
}

// tmux drives a terminal the way a person would: keys in, the screen out.
type tmux struct {
	t       *testing.T
	session string
}

func (m tmux) run(args ...string) string {
	m.t.Helper()
	out, err := exec.Command("tmux", args...).CombinedOutput()
	if err != nil {
		m.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (m tmux) keys(keys ...string) { m.run(append([]string{"send-keys", "-t", m.session}, keys...)...) }

func (m tmux) screen() string { return m.run("capture-pane", "-p", "-t", m.session) }

// waitFor waits until the screen shows text after the line that holds
// after ("" for anywhere).
func (m tmux) waitFor(text, after string) {
	m.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		s := m.screen()
		if after != "" {
			i := strings.LastIndex(s, after)
			if i < 0 {
				s = ""
			} else {
				s = s[i+len(after):]
			}
		}
		if strings.Contains(s, text) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	m.t.Fatalf("the screen never showed %q after %q:\n%s", text, after, m.screen())
}

func waitForFile(t *testing.T, path, text string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if b, _ := os.ReadFile(path); strings.Contains(string(b), text) {
			return string(b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := os.ReadFile(path)
	t.Fatalf("%s never held %q: %q", path, text, b)
	return ""
}

// TestShellUnderTmux: `quicksand shell` in a real terminal (tmux): the
// guest's terminal has the window's size and follows a resize, ^C reaches
// the guest's foreground command, ^D ends the shell, the local terminal is
// restored, and --save keeps what the session did.
func TestShellUnderTmux(t *testing.T) {
	bin := cli(t)
	driveShell(t, bin, bin)
}

// TestPythonShellUnderTmux: the Python package's `quicksand shell`, the
// same keys, the same flags.
func TestPythonShellUnderTmux(t *testing.T) {
	root, _ := filepath.Abs("../..")
	python := filepath.Join(root, "out/venv/bin/python")
	lib := filepath.Join(root, "out/lib/libquicksand.so")
	for _, f := range []string{python, lib} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%s is needed (make deps lib)", f)
		}
	}
	launch := fmt.Sprintf("QUICKSAND_LIB=%s PYTHONPATH=%s %s -m quicksand", lib, filepath.Join(root, "bindings/python"), python)
	driveShell(t, launch, cli(t))
}

// driveShell runs `LAUNCH shell --save` under tmux and plays a session;
// bin (the Go CLI) then resumes the save.
func driveShell(t *testing.T, launch, bin string) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatal("tmux is needed (make deps installs it)")
	}
	dir := t.TempDir()
	result := filepath.Join(dir, "result")
	save := filepath.Join(dir, "save")
	session := fmt.Sprintf("qs-shell-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	env := "QUICKSAND_IMAGE_PATH=" + os.Getenv("QUICKSAND_IMAGE_PATH")
	script := fmt.Sprintf(`before=$(stty -g); %s %s shell --memory 512M --save %s; echo EXIT=$? > %s; [ "$before" = "$(stty -g)" ] && echo RESTORED >> %s; sleep 60`,
		env, launch, save, result, result)
	m := tmux{t: t, session: session}
	m.run("new-session", "-d", "-s", session, "-x", "100", "-y", "30", "sh", "-c", script)
	t.Cleanup(func() { exec.Command("tmux", "kill-session", "-t", session).Run() })

	m.waitFor("root@quicksand", "")
	m.keys("stty size", "Enter")
	m.waitFor("30 100", "stty size")

	m.keys("sleep 100", "Enter")
	time.Sleep(500 * time.Millisecond)
	m.keys("C-c")
	m.waitFor("root@quicksand", "^C")

	m.run("resize-window", "-t", session, "-x", "120", "-y", "40")
	time.Sleep(300 * time.Millisecond)
	m.keys("stty size", "Enter")
	m.waitFor("40 120", "stty size")

	// A REPL and a full-screen program behave as on a real terminal.
	m.keys("python3", "Enter")
	m.waitFor(">>>", "python3")
	m.keys("print(6*7)", "Enter")
	m.waitFor("42", "print(6*7)")
	m.keys("C-d")
	m.waitFor("root@quicksand", "42")
	m.keys("top", "Enter")
	m.waitFor("load average", "")
	m.keys("q")
	m.waitFor("root@quicksand", "")

	m.keys("echo kept > /root/marker", "Enter")
	// As on any terminal, a ^D typed while a command runs is that
	// command's: wait for the prompt.
	m.waitFor("root@quicksand", "marker")
	m.keys("C-d")
	got := waitForFile(t, result, "RESTORED")
	if !strings.Contains(got, "EXIT=0") {
		t.Fatalf("the shell ended with %q", got)
	}
	out, err := exec.Command(bin, "run", "--image", save, "cat /root/marker").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "kept" {
		t.Fatalf("resuming the save: %q, %v", out, err)
	}
}
