package agent

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// FuzzEventStream feeds arbitrary bytes as an /execute_stream answer, as a
// hostile guest could send: parsing and handling the events never panics,
// and no event is larger than the bound.
func FuzzEventStream(f *testing.F) {
	f.Add([]byte("data: {\"type\":\"stdout\",\"data\":\"hi\"}\n\ndata: {\"type\":\"exit\",\"exit_code\":0}\n\n"))
	f.Add([]byte("data: {\"stream\":\"stderr\",\"data_b64\":\"/w==\"}\n\n"))
	f.Add([]byte("event: x\nid: 1\nretry: 5\ndata: {\"type\":\"error\",\"detail\":\"d\"}\n\n"))
	f.Add([]byte("data: {\"type\":\"exit\"}\n\ndata: not json\n\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		st := &stream{onChunk: func(Stream, []byte) error { return nil }}
		readEvents(bytes.NewReader(body), func(r eventOrError) bool {
			if r.err != nil {
				return false
			}
			if len(r.ev.Data)+len(r.ev.DataB64) > maxEventSize {
				t.Fatalf("an event of %d bytes", len(r.ev.Data)+len(r.ev.DataB64))
			}
			if st.event(&r.ev) != nil {
				return false
			}
			if r.ev.Kind() == protocol.EventExit {
				_ = st.result(&r.ev)
			}
			return true
		})
	})
}

// FuzzExecuteAnswer feeds arbitrary bytes as an /execute answer: decoding
// it never panics.
func FuzzExecuteAnswer(f *testing.F) {
	f.Add([]byte(`{"stdout":"a","stderr":"","exit_code":0,"timed_out":false}`))
	f.Add([]byte(`{"stdout":"","stdout_b64":"AP8=","exit_code":-1,"channel_bytes":{"stdout":3,"stderr":0}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var r protocol.ExecResult
		if json.Unmarshal(body, &r) != nil {
			return
		}
		_, _ = protocol.DecodeChunk(r.Stdout, r.StdoutB64)
		_, _ = protocol.DecodeChunk(r.Stderr, r.StderrB64)
	})
}
