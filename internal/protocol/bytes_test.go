package protocol

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestSplitUTF8(t *testing.T) {
	euro := []byte("€") // 3 bytes
	cases := []struct {
		name       string
		in         []byte
		head, tail []byte
	}{
		{"empty", nil, nil, nil},
		{"ascii", []byte("abc"), []byte("abc"), nil},
		{"whole rune", append([]byte("a"), euro...), append([]byte("a"), euro...), nil},
		{"one byte of three", append([]byte("a"), euro[0]), []byte("a"), euro[:1]},
		{"two bytes of three", append([]byte("a"), euro[:2]...), []byte("a"), euro[:2]},
		{"only partial", euro[:2], []byte{}, euro[:2]},
		{"invalid continuation stays", []byte{'a', 0x80}, []byte{'a', 0x80}, nil},
		{"lone 0xff stays", []byte{0xff}, []byte{0xff}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, tl := SplitUTF8(c.in)
			if !bytes.Equal(h, c.head) || !bytes.Equal(tl, c.tail) {
				t.Fatalf("SplitUTF8(%q) = %q, %q; want %q, %q", c.in, h, tl, c.head, c.tail)
			}
		})
	}
}

func TestChunkRoundTrip(t *testing.T) {
	for _, in := range [][]byte{[]byte("plain text\n"), []byte("héllo"), {0xff, 0x00, 0xfe, 'a'}, {}} {
		text, b64 := EncodeChunk(in)
		// Through JSON, as on the wire.
		raw, err := json.Marshal(Event{Type: EventStdout, Data: text, DataB64: b64})
		if err != nil {
			t.Fatal(err)
		}
		var ev Event
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		out, err := DecodeChunk(ev.Data, ev.DataB64)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("round trip of %q gave %q", in, out)
		}
	}
}

func TestEventKindReadsEitherField(t *testing.T) {
	for raw, want := range map[string]string{
		`{"type":"stdout","data":"x"}`:   "stdout",
		`{"stream":"stderr","data":"x"}`: "stderr",
		`{"type":"exit","exit_code":3}`:  "exit",
	} {
		var ev Event
		if err := json.Unmarshal([]byte(raw), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Kind() != want {
			t.Errorf("%s: kind %q, want %q", raw, ev.Kind(), want)
		}
	}
}
