package engine

// Every endpoint the protocol package names, tried on a real VM's agent
// through its port forward without the token and with wrong ones: each
// answers 401 and nothing runs. The list is read from the package's source,
// so an endpoint added there is tried here without a word (the agent's own
// route table is tried the same way on the host: guest-agent/auth_test.go).

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// protocolPaths returns the value of every constant named Path* in the
// protocol package.
func protocolPaths(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../internal/protocol/*.go")
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range f.Scope.Objects {
			spec, ok := obj.Decl.(*ast.ValueSpec)
			if obj.Kind != ast.Con || !strings.HasPrefix(obj.Name, "Path") || !ok {
				continue
			}
			for i, n := range spec.Names {
				if lit, ok := spec.Values[i].(*ast.BasicLit); ok && n.Name == obj.Name && lit.Kind == token.STRING {
					p, _ := strconv.Unquote(lit.Value)
					paths = append(paths, p)
				}
			}
		}
	}
	return paths
}

func TestEveryEndpointRefusesAWrongTokenInAVM(t *testing.T) {
	paths := protocolPaths(t)
	if !strings.Contains(strings.Join(paths, " "), protocol.PathProcessSignal) {
		t.Fatalf("read no endpoints from the protocol package: %q", paths)
	}
	sb := sharedSandbox(t)
	const marker = "/tmp/qs-auth-marker"
	body, _ := json.Marshal(map[string]any{
		"command": "touch " + marker, "path": marker, "op": "mkdir", "name": "qsauthvictim",
		"stdin_id": "x", "id": "x", "signal": 9, "token": "taken-over", "seed_b64": "AAAA",
	})
	query := "?" + url.Values{"path": {marker}}.Encode()
	client := &http.Client{Timeout: 30 * time.Second}
	for _, path := range paths {
		if path == protocol.PathAuthenticate {
			continue // open to anyone: it checks the token in its body
		}
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			for _, tok := range []string{"", "wrong", sb.Token() + "x"} {
				req, _ := http.NewRequest(method, "http://"+sb.AgentAddr()+path+query, bytes.NewReader(body))
				if tok != "" {
					req.Header.Set("Authorization", "Bearer "+tok)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", method, path, err)
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("%s %s with token %q: status %d, body %q; want 401", method, path, tok, resp.StatusCode, got)
				}
			}
		}
	}
	r := run(t, sb, ExecRequest{Command: "test -e " + marker + " && echo ran; id qsauthvictim >/dev/null 2>&1 && echo user; true"})
	if len(r.Stdout) != 0 {
		t.Fatalf("without the right token something happened in the guest: %q", r.Stdout)
	}
}
