package main

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

func joined(chunks []logChunk) string {
	var b bytes.Buffer
	for _, c := range chunks {
		b.Write(c.data)
	}
	return b.String()
}

func TestOutputLogKeepsOrderAndTheLatestBytes(t *testing.T) {
	l := newOutputLog()
	l.add(stdoutStream, []byte("one "))
	l.add(stderrStream, []byte("two "))
	l.add(stdoutStream, []byte("three"))
	chunks, dropped, next, ended, _ := l.since(0)
	if joined(chunks) != "one two three" || dropped != 0 || next != 13 || ended {
		t.Fatalf("since(0) = %q, %d, %d, %v", joined(chunks), dropped, next, ended)
	}
	if chunks[1].s != stderrStream {
		t.Fatal("a chunk lost its stream")
	}
	// From the middle of a chunk: cut at the offset.
	if chunks, _, _, _, _ := l.since(6); joined(chunks) != "o three" {
		t.Fatalf("since(6) = %q", joined(chunks))
	}
	// Past the bound the oldest chunks go; an attach from 0 learns how many
	// bytes it missed.
	big := bytes.Repeat([]byte("x"), protocol.ProcessOutputKept/2)
	l.add(stdoutStream, big)
	l.add(stdoutStream, big)
	chunks, dropped, next, _, _ = l.since(0)
	kept := len(joined(chunks))
	if kept > protocol.ProcessOutputKept || dropped == 0 || int64(kept)+dropped != next {
		t.Fatalf("after %d bytes: kept %d, dropped %d", next, kept, dropped)
	}
	// A waiter is woken by new output and by the end.
	_, _, _, _, more := l.since(next)
	l.finish()
	select {
	case <-more:
	default:
		t.Fatal("finish woke nobody")
	}
	if _, _, _, ended, _ := l.since(next); !ended {
		t.Fatal("not ended")
	}
}

// TestManyProcessesAtOnce: starts beyond the bound are refused with a
// clear error, and the agent keeps serving.
func TestManyProcessesAtOnce(t *testing.T) {
	a := startAgent(t)
	const documented = 1024 // docs/protocol.md: "503 past 1,024 running"
	const n = documented + 76
	codes := make(chan int, n)
	bodies := make(chan string, n)
	work := make(chan int)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				status, body := a.post(t, protocol.PathProcesses, a.token, map[string]any{"command": "sleep 5"})
				codes <- status
				if status != http.StatusOK {
					bodies <- string(body)
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(codes)
	close(bodies)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[http.StatusOK] != documented || count[http.StatusServiceUnavailable] != n-documented {
		t.Fatalf("answers by status: %v", count)
	}
	for b := range bodies {
		if !strings.Contains(b, "background processes run already") {
			t.Fatalf("refusal says %q", b)
		}
	}
	if r := a.exec(t, map[string]any{"command": "echo still here"}); r.Stdout != "still here\n" {
		t.Fatalf("after the flood: %+v", r)
	}
}
