package server

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	api "github.com/quicksand-go/quicksand/internal/serverapi"
)

// One tenant's sandbox from create to delete, every kind of call on it,
// while another tenant sees none of it.
func TestASandboxThroughTheServer(t *testing.T) {
	s := startServer(t)
	var sb api.Sandbox
	s.must(http.StatusCreated, "POST", "/v1/sandboxes", keyA, map[string]any{"memory": "512M", "metadata": map[string]string{"job": "t1", "team": "a"}}, &sb)
	if !strings.HasPrefix(sb.ID, "sb-") || sb.Metadata["job"] != "t1" || !sb.Running || sb.Timeout != 300 {
		t.Fatalf("created %+v", sb)
	}
	base := "/v1/sandboxes/" + sb.ID

	t.Run("execute", func(t *testing.T) {
		var r api.ExecResult
		s.must(http.StatusOK, "POST", base+"/execute", keyA, map[string]any{"command": "cat; echo err >&2; printf '\\377'; exit 3", "stdin": "in\n"}, &r)
		raw, _ := base64.StdEncoding.DecodeString(r.StdoutB64)
		if string(raw) != "in\n\xff" || r.Stderr != "err\n" || r.ExitCode != 3 || r.Duration <= 0 {
			t.Fatalf("result %+v (stdout %q)", r, raw)
		}
	})
	t.Run("stream", func(t *testing.T) {
		status, body := s.do("POST", base+"/execute/stream", keyA, map[string]any{"command": "echo one; sleep 0.3; echo two >&2; exit 4"})
		text := string(body)
		if status != 200 || !strings.Contains(text, "event: stdout\ndata: one\ndata: \n\n") ||
			!strings.Contains(text, "event: stderr\ndata: two\ndata: \n\n") || !strings.Contains(text, "event: exit\ndata: {\"exit_code\":4") {
			t.Fatalf("%d %s", status, text)
		}
		if strings.Index(text, "one") > strings.Index(text, "two") || strings.Index(text, "two") > strings.Index(text, "exit") {
			t.Fatalf("events out of order: %s", text)
		}
		// Asked for, the same events come as records.
		req, _ := http.NewRequest("POST", s.base+base+"/execute/stream", strings.NewReader(`{"command":"printf 'a\\377'; sleep 0.3; echo b >&2"}`))
		req.Header.Set("Authorization", "Bearer "+keyA)
		req.Header.Set("Accept", api.StreamType)
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		records, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var got []string
		for r := bytes.NewReader(records); ; {
			kind, p, err := api.ReadRecord(r, nil, 1<<20)
			if err != nil {
				break
			}
			got = append(got, fmt.Sprintf("%c:%q", kind, p))
		}
		if resp.Header.Get("Content-Type") != api.StreamType || len(got) != 3 || got[0] != `o:"a\xff"` || got[1] != `e:"b\n"` || !strings.HasPrefix(got[2], `x:"{\"exit_code\":0`) {
			t.Fatalf("records: %s %v", resp.Header.Get("Content-Type"), got)
		}
		status, body = s.do("POST", base+"/execute/stream", keyA, map[string]any{"command": "true", "cwd": "/nonexistent"})
		if status != 200 || !strings.Contains(string(body), "event: error") || strings.Contains(string(body), "event: exit") {
			t.Fatalf("a failed start streams an error event, not an exit: %d %s", status, body)
		}
	})
	t.Run("files", func(t *testing.T) {
		data := bytes.Repeat([]byte("0123456789"), 100000)
		s.must(http.StatusOK, "PUT", base+"/files?mode=600&path="+url.QueryEscape("/tmp/f"), keyA, data, nil)
		if _, got := s.do("GET", base+"/files?path=/tmp/f", keyA, nil); !bytes.Equal(got, data) {
			t.Fatalf("read back %d bytes", len(got))
		}
		var st api.FileOpResult
		s.must(http.StatusOK, "POST", base+"/files/op", keyA, map[string]any{"op": "stat", "path": "/tmp/f"}, &st)
		if st.Info == nil || st.Info.Size != int64(len(data)) || st.Info.Mode != 0o600 {
			t.Fatalf("stat %+v", st.Info)
		}
		status, body := s.do("GET", base+"/files?path=/nonexistent", keyA, nil)
		if status != 404 || !strings.Contains(string(body), `"kind":"not_found"`) {
			t.Fatalf("reading a missing file: %d %s", status, body)
		}
		status, body = s.do("GET", base+"/files?path=/tmp/f&max_size=10", keyA, nil)
		if status != 400 || !strings.Contains(string(body), "max_size") {
			t.Fatalf("reading past max_size: %d %s", status, body)
		}
		s.must(http.StatusOK, "POST", base+"/files/op", keyA, map[string]any{"op": "mkdir", "path": "/tmp/d/e", "parents": true}, nil)
		status, body = s.do("POST", base+"/files/op", keyA, map[string]any{"op": "stat", "path": "/tmp/f", "recursive": true})
		if status != 400 || !strings.Contains(string(body), "does not take the option Recursive") {
			t.Fatalf("an option the op does not take: %d %s", status, body)
		}
	})
	t.Run("trees", func(t *testing.T) {
		var tarball bytes.Buffer
		tw := tar.NewWriter(&tarball)
		tw.WriteHeader(&tar.Header{Name: "up/", Mode: 0o755, Typeflag: tar.TypeDir})
		tw.WriteHeader(&tar.Header{Name: "up/hello", Mode: 0o640, Size: 5, Typeflag: tar.TypeReg})
		tw.Write([]byte("hello"))
		tw.Close()
		s.must(http.StatusNoContent, "PUT", base+"/tree?path=/tmp/up", keyA, tarball.Bytes(), nil)
		_, back := s.do("GET", base+"/tree?path=/tmp/up", keyA, nil)
		tr := tar.NewReader(bytes.NewReader(back))
		found := map[string]string{}
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			b, _ := io.ReadAll(tr)
			found[h.Name] = fmt.Sprintf("%o %s", h.Mode&0o777, b)
		}
		if found["up/hello"] != "640 hello" {
			t.Fatalf("the tree came back as %v", found)
		}
	})
	t.Run("processes", func(t *testing.T) {
		var p api.ProcessInfo
		s.must(http.StatusCreated, "POST", base+"/processes", keyA, map[string]any{"command": "read line; echo got $line; sleep 0.2; exit 5"}, &p)
		var list api.ProcessList
		s.must(http.StatusOK, "GET", base+"/processes", keyA, nil, &list)
		if len(list.Processes) != 1 || list.Processes[0].ID != p.ID {
			t.Fatalf("processes %+v, started %+v", list, p)
		}
		s.must(http.StatusNoContent, "POST", base+"/processes/"+p.ID+"/stdin", keyA, []byte("hi\n"), nil)
		_, out := s.do("GET", base+"/processes/"+p.ID+"/output", keyA, nil)
		if !strings.Contains(string(out), "event: stdout\ndata: got hi\ndata: \n\n") || !strings.Contains(string(out), `"exit_code":5`) {
			t.Fatalf("attach: %s", out)
		}
		status, body := s.do("GET", base+"/processes/no-such-process/output", keyA, nil)
		if status != 404 {
			t.Fatalf("attaching to an unknown process: %d %s", status, body)
		}
	})
	t.Run("checkpoint and revert", func(t *testing.T) {
		s.must(http.StatusOK, "POST", base+"/execute", keyA, map[string]any{"command": "echo before > /tmp/state"}, nil)
		s.must(http.StatusNoContent, "POST", base+"/checkpoint", keyA, map[string]any{"tag": "c1"}, nil)
		s.must(http.StatusOK, "POST", base+"/execute", keyA, map[string]any{"command": "echo after > /tmp/state"}, nil)
		s.must(http.StatusNoContent, "POST", base+"/revert", keyA, map[string]any{"tag": "c1"}, nil)
		var r api.ExecResult
		s.must(http.StatusOK, "POST", base+"/execute", keyA, map[string]any{"command": "cat /tmp/state"}, &r)
		if r.Stdout != "before\n" {
			t.Fatalf("after revert: %q", r.Stdout)
		}
	})
	t.Run("list and labels", func(t *testing.T) {
		var l api.SandboxList
		s.must(http.StatusOK, "GET", "/v1/sandboxes?metadata=job%3Dt1&metadata=team%3Da", keyA, nil, &l)
		if len(l.Sandboxes) != 1 || l.Sandboxes[0].ID != sb.ID {
			t.Fatalf("list by labels: %+v", l)
		}
		s.must(http.StatusOK, "GET", "/v1/sandboxes?metadata=job%3Dother", keyA, nil, &l)
		if len(l.Sandboxes) != 0 {
			t.Fatalf("a label that matches none: %+v", l)
		}
		s.must(http.StatusOK, "GET", "/v1/sandboxes", keyB, nil, &l)
		if len(l.Sandboxes) != 0 {
			t.Fatalf("tenant B sees %+v", l)
		}
	})
	t.Run("strangers", func(t *testing.T) { everyRouteRefusesStrangers(t, s, sb.ID) })
	t.Run("bad requests", func(t *testing.T) {
		for _, c := range []struct {
			method, path string
			body         any
			want         string
		}{
			{"POST", base + "/execute", []byte("{not json"), "not the JSON"},
			{"POST", base + "/execute", []byte(`{"command":"true","extra":1}`), "unknown field"},
			{"POST", base + "/execute", []byte(`{"command":"true"} {}`), "more than one JSON value"},
			{"POST", base + "/execute", []byte(``), "needs a JSON body"},
			{"POST", base + "/execute", append([]byte(`{"command":"`), bytes.Repeat([]byte("x"), maxJSONBody+10)...), "larger than"},
			{"POST", "/v1/sandboxes", map[string]any{"image": "../../etc"}, "not an image name"},
			{"POST", "/v1/sandboxes", map[string]any{"image": "/tmp/x"}, "not an image name"},
			{"POST", "/v1/sandboxes", map[string]any{"mounts": []map[string]any{{"host": "/", "guest": "/mnt"}}}, "allows no mounts"},
			{"POST", "/v1/sandboxes", map[string]any{"memory": 1.5}, "whole number"},
			{"POST", base + "/processes/x/signal", map[string]any{"signal": 999}, "not a signal"},
			{"GET", base + "/files", nil, "needs a path"},
			{"GET", "/v1/sandboxes?metadata=novalue", nil, "not key=value"},
		} {
			status, body := s.do(c.method, c.path, keyA, c.body)
			if status != 400 || !strings.Contains(string(body), c.want) {
				t.Errorf("%s %s: %d %.300s, want 400 saying %q", c.method, c.path, status, body, c.want)
			}
		}
	})
	t.Run("delete", func(t *testing.T) {
		s.must(http.StatusNoContent, "DELETE", base, keyA, nil, nil)
		s.must(http.StatusNotFound, "GET", base, keyA, nil, nil)
		s.must(http.StatusNotFound, "DELETE", base, keyA, nil, nil)
	})
}

// An idle sandbox is stopped once its timeout passes; one kept busy is not.
func TestIdleSandboxesAreStopped(t *testing.T) {
	s := startServer(t)
	var idle, kept api.Sandbox
	s.must(http.StatusCreated, "POST", "/v1/sandboxes", keyA, map[string]any{"timeout": 2}, &idle)
	s.must(http.StatusCreated, "POST", "/v1/sandboxes", keyA, map[string]any{"timeout": 2}, &kept)
	// A command longer than the timeout keeps its sandbox.
	s.must(http.StatusOK, "POST", "/v1/sandboxes/"+kept.ID+"/execute", keyA, map[string]any{"command": "sleep 4"}, nil)
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, _ := s.do("GET", "/v1/sandboxes/"+idle.ID, keyA, nil)
		if status == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the idle sandbox is still there 20 s on")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(s.log.String(), "idle past its timeout") {
		t.Errorf("the log does not say why:\n%s", s.log)
	}
	var r api.Sandbox
	s.must(http.StatusOK, "POST", "/v1/sandboxes/"+kept.ID+"/timeout", keyA, map[string]any{"timeout": 0}, &r)
	if r.Timeout != 0 {
		t.Fatalf("timeout now %v", r.Timeout)
	}
}
