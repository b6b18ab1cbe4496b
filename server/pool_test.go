package server

import (
	"net/http"
	"regexp"
	"strconv"
	"testing"

	api "github.com/quicksand-go/quicksand/internal/serverapi"
)

// metric reads one unlabelled figure of /v1/metrics.
func metric(t *testing.T, s *testServer, name string) int {
	t.Helper()
	text := string(s.must(http.StatusOK, "GET", "/v1/metrics", keyA, nil, nil))
	m := regexp.MustCompile(`(?m)^` + name + ` (\d+)$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no %s in the metrics:\n%s", name, text)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// A create that asks for exactly what the server's pool keeps is answered
// from it, one that asks for something else is started, and the metrics
// count both, with the requests and their errors.
func TestThePoolAnswersCreatesThatMatchIt(t *testing.T) {
	s := startServer(t, "--pool", "image=debian,size=1,memory=512M")
	var pooled, other api.Sandbox
	s.must(http.StatusCreated, "POST", "/v1/sandboxes", keyA, map[string]any{}, &pooled) // the engine's default memory is the pool's
	s.must(http.StatusCreated, "POST", "/v1/sandboxes", keyA, map[string]any{"memory": 640}, &other)
	if got := metric(t, s, "quicksand_sandbox_starts_total"); got != 2 {
		t.Fatalf("starts: %d, want 2", got)
	}
	if got := metric(t, s, "quicksand_sandbox_pool_starts_total"); got != 1 {
		t.Fatalf("starts from the pool: %d, want 1", got)
	}
	var r api.ExecResult
	s.must(http.StatusOK, "POST", "/v1/sandboxes/"+pooled.ID+"/execute", keyA, map[string]any{"command": "echo pooled"}, &r)
	if r.Stdout != "pooled\n" {
		t.Fatalf("the pooled sandbox: %+v", r)
	}
	s.do("POST", "/v1/sandboxes/"+pooled.ID+"/execute", keyA, []byte("{"))
	text := string(s.must(http.StatusOK, "GET", "/v1/metrics", keyA, nil, nil))
	for _, want := range []string{
		`quicksand_sandboxes 2`,
		`quicksand_executes_total 1`,
		`quicksand_request_errors_total{kind="bad_request"} 1`,
		`quicksand_request_seconds_count{route="POST /v1/sandboxes"} 2`,
	} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want) + `$`).MatchString(text) {
			t.Errorf("the metrics lack %q:\n%s", want, text)
		}
	}
}
