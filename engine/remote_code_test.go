package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/quicksand-go/quicksand/internal/protocol"
	"github.com/quicksand-go/quicksand/internal/serverapi"
)

// A server sends a result as its MIME bundle (CodeResult.MIMEBundle) and
// the engine's client reads it as a local run's (codeResultOf): every
// field comes back as it was, formats without a field of their own too.
func TestMIMEBundleIsReadBackAsItWas(t *testing.T) {
	for _, r := range []CodeResult{
		{Text: "42", IsMainResult: true},
		{Text: "t", HTML: "<b>", Markdown: "*m*", SVG: "<svg/>", PNG: "iVBO", JPEG: "/9j/", PDF: "JVBE", LaTeX: "$x$",
			JavaScript: "1;", JSON: map[string]any{"a": float64(1)},
			Extra: map[string]any{"application/vnd.custom": "c", "text/plain+odd": []any{"x"}}},
		// A known format whose value is no string stays among the extras.
		{Extra: map[string]any{"text/html": []any{"<b>", "</b>"}}},
		{},
	} {
		back := codeResultOf(&protocol.CodeResult{Data: r.MIMEBundle(), IsMainResult: r.IsMainResult})
		if !reflect.DeepEqual(back, r) {
			t.Errorf("%+v came back as %+v", r, back)
		}
	}
}

// A server's run is read with the local bounds and rules: the events come
// in order to the callbacks, 256 MiB in all at most, one event at most
// 64 MiB, exactly one end or error; a callback's error drops the stream.
func TestRemoteCodeFromALyingServer(t *testing.T) {
	gone := make(chan struct{})
	srv := fakeServer(t, map[string]http.HandlerFunc{
		"POST /v1/sandboxes/sb1/code/run": func(w http.ResponseWriter, r *http.Request) {
			var req serverapi.CodeRunRequest
			json.NewDecoder(r.Body).Decode(&req)
			w.Header().Set("Content-Type", "text/event-stream")
			data := func(s string) { fmt.Fprintf(w, "data: %s\n\n", s); w.(http.Flusher).Flush() }
			switch req.Code {
			case "honest":
				data(`{"type":"stdout","text":"one\n"}`)
				data(`{"type":"stderr","text":"two\n"}`)
				data(`{"type":"result","result":{"data":{"text/plain":"42","image/png":"iVBO"},"is_main_result":true}}`)
				data(`{"type":"error","error":{"name":"ZeroDivisionError","value":"division by zero","traceback":"tb"}}`)
				writeEvent(w, "later", `a kind of event of a later server`)
				data(`{"type":"end","execution_count":7}`)
			case "endless":
				// Unknown events, skipped without decoding: only the cap
				// in all ends them.
				mib := strings.Repeat("a", 1<<20)
				for i := 0; i < 300 && r.Context().Err() == nil; i++ {
					writeEvent(w, "later", mib)
				}
				data(`{"type":"end","execution_count":1}`)
			case "huge":
				fmt.Fprint(w, "data: ")
				chunk := strings.Repeat("a", 1<<20)
				for i := 0; i < 70 && r.Context().Err() == nil; i++ {
					fmt.Fprint(w, chunk)
				}
			case "noend":
				data(`{"type":"stdout","text":"x"}`)
			case "notjson":
				data(`{"type":`)
			case "error":
				data(`{"type":"stdout","text":"x"}`)
				writeEvent(w, "error", `{"error":{"kind":"resource","code":14,"message":"the guest ran out of memory"}}`)
			case "ticks":
				for {
					data(`{"type":"stdout","text":"tick"}`)
					select {
					case <-r.Context().Done():
						close(gone)
						return
					case <-time.After(10 * time.Millisecond):
					}
				}
			}
		},
		"POST /v1/sandboxes/sb1/code/contexts": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusCreated)
			fmt.Fprint(w, `{"language":"python"}`)
		},
	})
	sb := connectFake(t, srv)
	ctx := context.Background()

	var seen []string
	ex, err := sb.RunCode(ctx, CodeRequest{Code: "honest",
		OnStdout: func(s string) error { seen = append(seen, "out:"+s); return nil },
		OnStderr: func(s string) error { seen = append(seen, "err:"+s); return nil },
		OnResult: func(r CodeResult) error { seen = append(seen, "result:"+r.Text); return nil },
		OnError:  func(e CodeError) error { seen = append(seen, "error:"+e.Name); return nil },
	})
	if err != nil || ex.ExecutionCount != 7 || ex.Text() != "42" || ex.Results[0].PNG != "iVBO" || ex.Error == nil || ex.Error.Traceback != "tb" ||
		strings.Join(seen, ",") != "out:one\n,err:two\n,result:42,error:ZeroDivisionError" {
		t.Fatalf("an honest run: %+v %v; callbacks %q", ex, err, seen)
	}

	for code, want := range map[string]struct {
		kind Kind
		msg  string
	}{
		"endless": {KindTransport, "passed 256 MiB"},
		"huge":    {KindTransport, "reading the code run's events"},
		"noend":   {KindTransport, "ended without its end"},
		"notjson": {KindTransport, "decoding event"},
		"error":   {KindResource, "the guest ran out of memory"},
	} {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		_, err := sb.RunCode(cctx, CodeRequest{Code: code})
		cancel()
		if KindOf(err) != want.kind || !strings.Contains(fmt.Sprint(err), want.msg) {
			t.Errorf("%s: %v (kind %v), want %v saying %q", code, err, KindOf(err), want.kind, want.msg)
		}
	}

	mine := errors.New("the caller had enough")
	calls := 0
	if _, err := sb.RunCode(ctx, CodeRequest{Code: "ticks", OnStdout: func(string) error { calls++; return mine }}); err != mine || calls != 1 {
		t.Fatalf("got %v after %d calls, want the callback's own error after 1", err, calls)
	}
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the server's stream was not abandoned")
	}

	if _, err := sb.CreateCodeContext(ctx, CodeContextOptions{}); KindOf(err) != KindTransport || !strings.Contains(err.Error(), "no id") {
		t.Errorf("a context without an id: %v", err)
	}
}
