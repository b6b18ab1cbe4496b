package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestWriteJSONTextMatchesEncodingJSON(t *testing.T) {
	inputs := []string{
		"", "plain", "quote \" backslash \\ slash /", "tab\tnl\ncr\r",
		"\x00\x01\x1f\x7f", "héllo €uro 𝄞", "bad \xff byte", "<html>&amp;", "\u2028",
	}
	for _, in := range inputs {
		var buf bytes.Buffer
		w := bufio.NewWriter(&buf)
		writeJSONText(w, [][]byte{[]byte(in)})
		w.Flush()
		var got string
		if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
			t.Fatalf("%q: output %s is not JSON: %v", in, buf.Bytes(), err)
		}
		if want := strings.ToValidUTF8(in, "\uFFFD"); got != want {
			t.Errorf("%q: decoded to %q, want %q", in, got, want)
		}
	}
}

func TestCollectorKeepsBytesAndLimit(t *testing.T) {
	c := newCollector(10)
	c.add([]byte("hello "))
	c.add([]byte("wor"))
	if c.truncated || c.size != 9 {
		t.Fatalf("size %d truncated %v", c.size, c.truncated)
	}
	c.add([]byte("€")) // 3 bytes, only 1 fits: keep none of it
	if !c.truncated || c.size != 9 {
		t.Fatalf("after overflow: size %d truncated %v", c.size, c.truncated)
	}
	if got := string(bytes.Join(c.chunks, nil)); got != "hello wor" {
		t.Fatalf("kept %q", got)
	}
	if c.invalid {
		t.Fatal("valid text marked invalid")
	}
}

func TestCollectorSpansChunks(t *testing.T) {
	c := newCollector(1 << 30)
	piece := bytes.Repeat([]byte("x"), 1000)
	for i := 0; i < 200; i++ {
		c.add(piece)
	}
	if len(c.chunks) != (200*1000+chunkSize-1)/chunkSize {
		t.Fatalf("%d chunks for 200000 bytes", len(c.chunks))
	}
	if n := len(bytes.Join(c.chunks, nil)); n != 200000 {
		t.Fatalf("kept %d bytes", n)
	}
	c.add([]byte{0xff})
	if !c.invalid {
		t.Fatal("0xff not marked invalid")
	}
}

func TestParseCmdline(t *testing.T) {
	kv := parseCmdline("root=/dev/vda rw quiet quicksand_token=abc quicksand_port=8080\n")
	if kv["quicksand_token"] != "abc" || kv["quicksand_port"] != "8080" || kv["root"] != "/dev/vda" {
		t.Fatalf("parsed %v", kv)
	}
	if _, ok := kv["rw"]; !ok {
		t.Fatal("bare word lost")
	}
}
