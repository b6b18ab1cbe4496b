package serverapi

import (
	"bytes"
	"io"
	"strings"
	"testing"

	sse "github.com/tmaxmax/go-sse"
)

// Every chunk comes back byte for byte through an SSE reader, whatever it
// holds: trailing and lone newlines, carriage returns, NULs, invalid
// UTF-8, a split character, "data:" inside the text.
func TestChunkEventsRoundTrip(t *testing.T) {
	chunks := []string{"", "a", "a\nb", "a\n", "\n", "\n\n", "a\n\nb\n", "x\x00y", "é", " lead", "data: x", ":comment",
		"a\r\nb", "\r", "\xff\xfe", "\xc3", "event: exit\n\n", bytes.NewBuffer(bytes.Repeat([]byte("abcdefgh\n"), 100000)).String()}
	var stream []byte
	for i, c := range chunks {
		stream = AppendChunkEvent(stream, i%2 == 1, []byte(c))
	}
	i := 0
	for ev, err := range sse.Read(bytes.NewReader(stream), &sse.ReadConfig{MaxEventSize: 4 << 20}) {
		if err != nil {
			t.Fatal(err)
		}
		p, stderr, ok, err := ChunkOf(ev.Type, ev.Data)
		if !ok || err != nil || string(p) != chunks[i] || stderr != (i%2 == 1) {
			t.Errorf("chunk %d: %q (stderr %v, ok %v, %v), want %.40q", i, p, stderr, ok, err, chunks[i])
		}
		i++
	}
	if i != len(chunks) {
		t.Fatalf("%d events for %d chunks", i, len(chunks))
	}
	if _, _, ok, _ := ChunkOf("exit", "{}"); ok {
		t.Fatal("an exit event taken for a chunk")
	}
	if _, _, _, err := ChunkOf(EventStdoutB64, "!!"); err == nil {
		t.Fatal("bad base64 taken")
	}
}

// Records come back as they went, and a length past the bound or a
// record cut short is an error, not an allocation or a short read taken
// for a whole one.
func TestRecords(t *testing.T) {
	var b []byte
	b = AppendRecord(b, RecordStdout, []byte("out\n"))
	b = AppendRecord(b, RecordStderr, nil)
	b = AppendRecord(b, RecordExit, []byte(`{"exit_code":0}`))
	r := bytes.NewReader(b)
	for _, want := range []struct {
		kind byte
		p    string
	}{{RecordStdout, "out\n"}, {RecordStderr, ""}, {RecordExit, `{"exit_code":0}`}} {
		kind, p, err := ReadRecord(r, nil, 100)
		if err != nil || kind != want.kind || string(p) != want.p {
			t.Fatalf("%c %q %v, want %c %q", kind, p, err, want.kind, want.p)
		}
	}
	if _, _, err := ReadRecord(r, nil, 100); err != io.EOF {
		t.Fatalf("after the last record: %v", err)
	}
	if _, _, err := ReadRecord(bytes.NewReader([]byte{RecordStdout, 0xff, 0xff, 0xff, 0xff}), nil, 1<<20); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("a 4 GiB record: %v", err)
	}
	if _, _, err := ReadRecord(bytes.NewReader(AppendRecord(nil, RecordStdout, []byte("abc"))[:6]), nil, 100); err == nil {
		t.Fatal("a record cut short was taken")
	}
}
