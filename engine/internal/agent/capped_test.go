package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// An /execute answer that carries more output than the call's cap (a
// lying agent's: the real one never sends it) is cut to the cap on the
// host. The engine's real-VM test is TestALyingAgentsCommandAnswers.
func TestExecuteKeepsTheCapOfALyingAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(protocol.ExecResult{Stdout: strings.Repeat("o", 4000), Stderr: strings.Repeat("é", 2000)})
	}))
	defer srv.Close()
	c := New(strings.TrimPrefix(srv.URL, "http://"), "token-token-token")
	defer c.Close()
	res, err := c.Execute(context.Background(), protocol.ExecRequest{Command: "true", MaxOutput: 1001}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// 1001 bytes of stdout; of stderr 1000, as a 2-byte character is never halved.
	if len(res.Stdout) != 1001 || len(res.Stderr) != 1000 || !res.StdoutTruncated || !res.StderrTruncated {
		t.Errorf("a cap of 1001: %d and %d bytes kept, truncated %v %v", len(res.Stdout), len(res.Stderr), res.StdoutTruncated, res.StderrTruncated)
	}
}
