package engine

// Tests of the output channel (internal/protocol/frame.go) on real VMs.

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// mixedOutput writes binary and text to both streams, interleaved.
const mixedOutput = `for i in 1 2 3; do echo "out $i"; echo "err $i" >&2; done
cat /tmp/mixed.bin; printf 'h\303\251llo\n' >&2; yes abcdefgh | head -c 3000000`

// The same commands give the same results through the channel and in the
// answers themselves, and the channel does carry the output.
func TestOutputChannelMatchesInBandOutput(t *testing.T) {
	sb := startSandbox(t, Config{})
	if ok, why := sb.OutputChannel(); !ok {
		t.Fatalf("no output channel: %v", why)
	}
	type outcome struct {
		res      *ExecResult
		streamed [3][]byte
	}
	runBoth := func() (buffered, streamed outcome) {
		var err error
		if buffered.res, err = sb.Execute(context.Background(), ExecRequest{Command: mixedOutput}); err != nil {
			t.Fatal(err)
		}
		streamed.res, err = sb.Execute(context.Background(), streaming(ExecRequest{Command: "cat /tmp/mixed.bin; printf 'h\\303\\251llo\\n' >&2; yes abcdefgh | head -c 3000000"}, func(s Stream, p []byte) { streamed.streamed[s] = append(streamed.streamed[s], p...) }))
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	run(t, sb, ExecRequest{Command: "head -c 200000 /dev/urandom > /tmp/mixed.bin"})
	before := sb.channel.Received()
	viaChannel, viaChannelStream := runBoth()
	if got := sb.channel.Received() - before; got < 2*3200000 {
		t.Fatalf("only %d bytes came over the output channel", got)
	}
	sb.client.SetChannel(nil) // in-band from here
	inBand, inBandStream := runBoth()
	sb.client.SetChannel(sb.channel)

	if len(viaChannel.res.Stdout) != 200000+3000000+3*6 || !bytes.Equal(viaChannel.res.Stdout, inBand.res.Stdout) ||
		!bytes.Equal(viaChannel.res.Stderr, inBand.res.Stderr) || viaChannel.res.ExitCode != 0 {
		t.Fatalf("Execute: channel gave %d+%d bytes, in-band %d+%d", len(viaChannel.res.Stdout), len(viaChannel.res.Stderr), len(inBand.res.Stdout), len(inBand.res.Stderr))
	}
	for _, o := range []outcome{viaChannelStream, inBandStream} {
		if !bytes.Equal(o.res.Stdout, o.streamed[Stdout]) || !bytes.Equal(o.res.Stderr, o.streamed[Stderr]) {
			t.Fatal("ExecuteStream: the chunks do not add up to the result")
		}
	}
	if !bytes.Equal(viaChannelStream.res.Stdout, inBandStream.res.Stdout) || string(viaChannelStream.res.Stderr) != "héllo\n" {
		t.Fatalf("ExecuteStream: channel gave %d bytes + %q", len(viaChannelStream.res.Stdout), viaChannelStream.res.Stderr)
	}
}

// Chunks handed to a callback never end inside a UTF-8 character, although
// frames split the output anywhere.
func TestChannelChunksAreWholeCharacters(t *testing.T) {
	sb := sharedSandbox(t)
	var chunks int
	var all []byte
	res, err := sb.Execute(context.Background(), streaming(ExecRequest{
		Command: `python3 -c "import sys; sys.stdout.buffer.write(('é€😀x' * 300000).encode())"`,
	}, func(s Stream, p []byte) {
		chunks++
		if !utf8.Valid(p) {
			t.Errorf("chunk %d of %d bytes is not valid UTF-8", chunks, len(p))
		}
		all = append(all, p...)
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Repeat("é€😀x", 300000)
	if string(all) != want || string(res.Stdout) != want {
		t.Fatalf("got %d bytes in %d chunks, want %d", len(all), chunks, len(want))
	}
}

// A consumer that does not take its output holds back only its own command:
// another command on the same sandbox, with more output than the window,
// finishes meanwhile (here: inside the stalled callback, so head-of-line
// blocking would deadlock, and the context would end the test).
func TestSlowConsumerHoldsBackOnlyItsOwnCall(t *testing.T) {
	sb := sharedSandbox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const big = 12 << 20
	inner := false
	res, err := sb.Execute(ctx, streaming(ExecRequest{Command: "head -c 12582912 /dev/zero"}, func(s Stream, p []byte) {
		if inner {
			return
		}
		inner = true
		r, err := sb.Execute(ctx, ExecRequest{Command: "yes | head -c 12582912"})
		if err != nil || len(r.Stdout) != big {
			t.Errorf("the other command: %v", err)
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Stdout) != big || !inner {
		t.Fatalf("got %d bytes", len(res.Stdout))
	}
}

// A checkpoint taken while output streams holds frames half sent; after a
// revert to it the guest goes on sending them for a call the host has
// forgotten. The host drops them, finds its place again, and later output
// arrives exact.
func TestChannelAfterRevertMidStream(t *testing.T) {
	sb := startSandbox(t, Config{})
	streamErr := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		var once bool
		_, err := sb.Execute(context.Background(), streaming(ExecRequest{Command: "yes abcdefgh | head -c 400000000", Timeout: 2 * time.Minute}, func(Stream, []byte) {
			if !once {
				once = true
				close(started)
			}
		}))
		streamErr <- err
	}()
	select {
	case <-started:
	case err := <-streamErr:
		t.Fatalf("the stream ended before the checkpoint: %v", err)
	}
	if err := sb.Checkpoint(context.Background(), "mid-stream"); err != nil {
		t.Fatal(err)
	}
	if err := sb.Revert(context.Background(), "mid-stream"); err != nil {
		t.Fatal(err)
	}
	if err := <-streamErr; !errors.Is(err, ErrCancelled) {
		t.Fatalf("the stream in flight at the revert: %v", err)
	}
	want := ""
	for i := 1; i <= 100000; i++ {
		want += strconv.Itoa(i) + "\n"
	}
	for i := 0; i < 3; i++ {
		r := run(t, sb, ExecRequest{Command: "seq 1 100000; echo done >&2"})
		if string(r.Stdout) != want || string(r.Stderr) != "done\n" {
			t.Fatalf("after the revert, try %d: %d bytes of stdout, stderr %q", i, len(r.Stdout), r.Stderr)
		}
	}
	if ok, why := sb.OutputChannel(); !ok {
		t.Fatalf("the channel is gone: %v", why)
	}
}

// MaxOutput caps what a result keeps of each stream, collected or
// streamed, over the channel or in-band, and says so; a streaming callback
// still gets every byte.
func TestMaxOutputCapsTheResult(t *testing.T) {
	sb := sharedSandbox(t)
	cmd := "head -c 300000 /dev/zero | tr '\\0' a; echo err >&2"
	r := run(t, sb, ExecRequest{Command: cmd, MaxOutput: 1000})
	if len(r.Stdout) != 1000 || !r.StdoutTruncated || string(r.Stderr) != "err\n" || r.StderrTruncated {
		t.Fatalf("collected: %d bytes, truncated %v/%v", len(r.Stdout), r.StdoutTruncated, r.StderrTruncated)
	}
	got := 0
	r, err := sb.Execute(context.Background(), streaming(ExecRequest{Command: cmd, MaxOutput: 1000}, func(s Stream, p []byte) {
		if s == Stdout {
			got += len(p)
		}
	}))
	if err != nil || len(r.Stdout) != 1000 || !r.StdoutTruncated || got != 300000 {
		t.Fatalf("streamed: %v, %d bytes kept, truncated %v, %d to the callback", err, len(r.Stdout), r.StdoutTruncated, got)
	}
	if _, err := sb.Execute(context.Background(), ExecRequest{Command: "true", MaxOutput: -1}); KindOf(err) != KindBadRequest {
		t.Fatalf("negative max_output: %v", err)
	}
}
