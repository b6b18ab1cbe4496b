package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quicksand-go/quicksand/engine"
	api "github.com/quicksand-go/quicksand/internal/serverapi"
)

// A network policy through the server: given at create by the engine's
// client, changed with PUT (by the client and by hand), counted with GET,
// kept across a restart. No address is reached: 198.19.0.9 (a
// benchmarking range) is only named, never dialled, and the one name
// looked up is answered by the policy itself or refused.
func TestANetworkPolicyThroughTheServer(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	const only = "198.19.0.9:1"
	sb, err := engine.Start(ctx, engine.Config{Server: s.base, APIKey: keyA, NetworkPolicy: &engine.NetworkPolicy{AllowOut: []string{only}}})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Stop(ctx)
	path := "/v1/sandboxes/" + sb.ID()
	getent := func(want string) {
		t.Helper()
		var r api.ExecResult
		s.must(http.StatusOK, "POST", path+"/execute", keyA, map[string]any{"command": "getent hosts example.invalid; echo $?"}, &r)
		if !strings.Contains(r.Stdout, want) {
			t.Fatalf("getent said %q, want %q", r.Stdout, want)
		}
	}
	getent("2\n") // NXDOMAIN: the policy given at create is in force
	st, err := sb.NetworkStats()
	if err != nil || st.NamesRefused < 1 {
		t.Fatalf("the client's stats: %+v %v", st, err)
	}

	pinned := &engine.NetworkPolicy{AllowOut: []string{only, "example.invalid"},
		Hosts: map[string][]netip.Addr{"example.invalid": {netip.MustParseAddr("198.19.0.9")}}}
	if err := sb.SetNetwork(ctx, pinned); err != nil {
		t.Fatal(err)
	}
	getent("198.19.0.9")
	var counts api.NetworkStats
	s.must(http.StatusOK, "GET", path+"/network", keyA, nil, &counts)
	if counts.NamesAllowed < 1 || counts.NamesRefused < 1 {
		t.Fatalf("GET network: %+v", counts)
	}

	// Bad entries: named, by the client before it sends and by the server.
	if err := sb.SetNetwork(ctx, &engine.NetworkPolicy{DenyOut: []string{"10.0.0.0/33"}}); !errors.Is(err, engine.ErrInvalidConfig) || !strings.Contains(err.Error(), "deny_out[0]") {
		t.Fatalf("a bad entry through the client: %v", err)
	}
	if status, body := s.do("PUT", path+"/network", keyA, map[string]any{"allow_out": []string{only, "bad name!"}}); status != http.StatusBadRequest || !strings.Contains(string(body), "allow_out[1]") || !strings.Contains(string(body), "invalid_config") {
		t.Fatalf("a bad entry by hand: %d %s", status, body)
	}
	if status, body := s.do("PUT", path+"/network", keyA, map[string]any{"allowed": []string{}}); status != http.StatusBadRequest || !strings.Contains(string(body), "allowed") {
		t.Fatalf("an unknown key: %d %s", status, body)
	}
	if status, body := s.do("PUT", path+"/network", keyB, nil); status != http.StatusNotFound {
		t.Fatalf("another tenant's sandbox: %d %s", status, body)
	}
	s.must(http.StatusNoContent, "PUT", path+"/network", keyA, []byte("null"), nil)
	s.must(http.StatusNoContent, "PUT", path+"/network", keyA, (*api.NetworkPolicy)(pinned), nil)

	// A restart keeps the policy in force (the PUT's, not the create's).
	s.stop()
	raw, err := os.ReadFile(filepath.Join(s.data, "state", sb.ID(), recordFile))
	if err != nil {
		t.Fatal(err)
	}
	var rec record
	if err := json.Unmarshal(raw, &rec); err != nil || rec.Policy == nil || len(rec.Policy.AllowOut) != 2 || len(rec.Policy.Hosts["example.invalid"]) != 1 {
		t.Fatalf("the record keeps no policy: %s (%v)", raw, err)
	}
	s.launch()
	getent("198.19.0.9")
	s.must(http.StatusOK, "GET", path+"/network", keyA, nil, &counts)
}

// A restricted sandbox has no guard: a policy is a bad request, and a
// create's policy needs network full.
func TestANetworkPolicyNeedsFullMode(t *testing.T) {
	s := startServer(t)
	if status, body := s.do("POST", "/v1/sandboxes", keyA, map[string]any{"network": "restricted", "network_policy": map[string]any{"allow_out": []string{"a.test"}}}); status != http.StatusBadRequest || !strings.Contains(string(body), "network_policy") {
		t.Fatalf("a policy with network restricted: %d %s", status, body)
	}
	if status, body := s.do("POST", "/v1/sandboxes", keyA, map[string]any{"network_policy": map[string]any{"hosts": map[string]any{"a.test": []string{"nope"}}}}); status != http.StatusBadRequest || !strings.Contains(string(body), "nope") {
		t.Fatalf("a bad host address: %d %s", status, body)
	}
}

// A create with a policy is never answered from the pool, whose
// sandboxes were started without one (and in the pool's network mode).
func TestAPolicyIsNotAnsweredFromThePool(t *testing.T) {
	s := startServer(t, "--pool", "image=debian,size=1,memory=512M")
	var sb api.Sandbox
	s.must(http.StatusCreated, "POST", "/v1/sandboxes", keyA, map[string]any{"network_policy": map[string]any{"allow_out": []string{"198.19.0.9:1"}}}, &sb)
	if got := metric(t, s, "quicksand_sandbox_pool_starts_total"); got != 0 {
		t.Errorf("starts from the pool: %d, want 0", got)
	}
	var counts api.NetworkStats
	s.must(http.StatusOK, "GET", "/v1/sandboxes/"+sb.ID+"/network", keyA, nil, &counts)
}
