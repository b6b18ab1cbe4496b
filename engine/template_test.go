package engine

import (
	"context"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestHasOpenConnections(t *testing.T) {
	idle := "Hub -1 (net0):\n  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\n" +
		"  TCP[HOST_FORWARD]  11       127.0.0.1 35435       10.0.2.15 35435     0     0\n"
	busy := idle + "  TCP[ESTABLISHED]   20       127.0.0.1 35435       10.0.2.15 35435     0     0\n"
	closing := idle + "  TCP[FIN_WAIT_2]    20       127.0.0.1 35435       10.0.2.15 35435     0     0\n"
	timeWait := idle + "  TCP[TIME_WAIT]     21       127.0.0.1 41145       10.0.2.15 41145     0     0\n"
	strangerHolds := idle + "  TCP[CLOSE_WAIT]    19       127.0.0.1 41833       10.0.2.15 41833     0     0\n"
	if hasOpenConnections(idle) || hasOpenConnections(timeWait) || hasOpenConnections(strangerHolds) {
		t.Error("a listener or a closed connection counted as open")
	}
	if !hasOpenConnections(busy) || !hasOpenConnections(closing) {
		t.Error("an open connection was missed")
	}
}

// A resume that only ran out of time keeps the template: it was thrown
// away and rebuilt before, and under many starts at once on a busy host
// every start that waited on the rebuild then timed out as well.
func TestASlowResumeKeepsTheTemplate(t *testing.T) {
	templates := t.TempDir()
	startSandbox(t, Config{TemplateDir: templates}).Stop(context.Background())
	before := templateFolders(t, templates)
	if len(before) != 1 {
		t.Fatalf("templates after the first start: %v", before)
	}
	_, err := Start(context.Background(), Config{TemplateDir: templates, BootTimeout: 20 * time.Millisecond})
	if KindOf(err) != KindBootTimeout {
		t.Fatalf("a start with a 20 ms boot timeout: %v", err)
	}
	if after := templateFolders(t, templates); !reflect.DeepEqual(after, before) {
		t.Fatalf("the template changed after a slow resume: %v, was %v", after, before)
	}
}

// templateFolders names the templates in dir with their modification times.
func templateFolders(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || !e.IsDir() {
			continue
		}
		fi, _ := e.Info()
		out = append(out, e.Name()+" "+fi.ModTime().String())
	}
	return out
}
