package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/quicksand-go/quicksand/engine"
	"github.com/quicksand-go/quicksand/server"
)

// benchKey is the API key of the benchmark's own server.
const benchKey = "qsbench-0123456789abcdef"

// serverFigures measures a sandbox through quicksand serve on the
// loopback beside one used directly, in the same run: each figure's rounds
// alternate the two, so the machine's drift stays out of the comparison.
func serverFigures(ctx context.Context, n sizes) []figure {
	proto := figure{Name: "server", Via: "Go"}
	dir, err := os.MkdirTemp("", "qsbench-server-")
	if err != nil {
		return []figure{failed(proto, err)}
	}
	defer os.RemoveAll(dir)
	keys := filepath.Join(dir, "keys")
	os.WriteFile(keys, []byte(benchKey+"\n"), 0o600)
	srv, err := server.New(server.Options{Listen: "127.0.0.1:0", KeysFile: keys, DataDir: filepath.Join(dir, "data"),
		Pools: []server.PoolSpec{{Image: engine.DefaultImage, Size: 2}}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return []figure{failed(proto, err)}
	}
	go srv.Serve()
	defer srv.Close(context.Background())
	url := "http://" + srv.Addr().String()

	local, err := engine.Start(ctx, engine.Config{})
	if err != nil {
		return []figure{failed(proto, err)}
	}
	defer local.Stop(ctx)
	remote, err := engine.Start(ctx, engine.Config{Server: url, APIKey: benchKey})
	if err != nil {
		return []figure{failed(proto, err)}
	}
	defer remote.Stop(ctx)

	figs := pairedServer(ctx, local, remote, "execute `true`, round trip", "ms", n.pairRounds, func(sb *engine.Sandbox) (float64, error) {
		return medianRoundTrip(ctx, sb, n.pairExecs)
	})
	figs = append(figs, pairedServer(ctx, local, remote, fmt.Sprintf("text stdout throughput, %d MiB, with a callback", n.streamBytes>>20), "MB/s", n.streams, func(sb *engine.Sandbox) (float64, error) {
		return streamRate(ctx, sb, n.streamBytes)
	})...)
	figs = append(figs, serverPoolCreate(ctx, url, n.warm), manyClients(ctx, url, remote.ID(), 50, 20))
	return figs
}

// pairedServer alternates rounds on the direct sandbox and the server's,
// and reports both with the server's overhead (a difference for times, a
// ratio for rates) in the server's name.
func pairedServer(ctx context.Context, local, remote *engine.Sandbox, name, unit string, rounds int, round func(*engine.Sandbox) (float64, error)) []figure {
	direct := figure{Name: name + ", the library directly", Via: "Go", Unit: unit}
	served := figure{Name: name + ", through the server on the loopback", Via: "Go", Unit: unit}
	var ds, ss sample
	for i := 0; i < rounds; i++ {
		d, err := round(local)
		if err != nil {
			return []figure{failed(direct, err)}
		}
		s, err := round(remote)
		if err != nil {
			return []figure{failed(served, err)}
		}
		ds.add(d)
		ss.add(s)
	}
	direct, served = fill(direct, &ds), fill(served, &ss)
	if unit == "ms" {
		served.Name += fmt.Sprintf(" (+%.2f ms)", served.Median-direct.Median)
	} else {
		served.Name += fmt.Sprintf(" (%.0f%% of direct)", 100*served.Median/direct.Median)
	}
	return []figure{direct, served}
}

func medianRoundTrip(ctx context.Context, sb *engine.Sandbox, n int) (float64, error) {
	var s sample
	for i := 0; i < n; i++ {
		start := time.Now()
		if _, err := sb.Execute(ctx, engine.ExecRequest{Command: "true"}); err != nil {
			return 0, err
		}
		s.addDuration(time.Since(start))
	}
	return s.median(), nil
}

func streamRate(ctx context.Context, sb *engine.Sandbox, size int) (float64, error) {
	got := 0
	start := time.Now()
	_, err := sb.Execute(ctx, engine.ExecRequest{Command: fmt.Sprintf("yes abcdefgh | head -c %d", size), Timeout: 10 * time.Minute,
		OnOutput: func(_ engine.Stream, p []byte) error { got += len(p); return nil }})
	if err == nil && got != size {
		err = fmt.Errorf("received %d bytes of %d", got, size)
	}
	return float64(size) / 1e6 / time.Since(start).Seconds(), err
}

// serverPoolCreate is a create the server answers from its pool (two
// kept), each after the pool refilled.
func serverPoolCreate(ctx context.Context, url string, n int) figure {
	f := figure{Name: "create through the server, from its pool", Via: "Go", Unit: "ms",
		Command: "engine.Start(Config{Server}) on quicksand serve --pool image=debian,size=2, 2 s apart"}
	var s sample
	for i := 0; i < n; i++ {
		time.Sleep(2 * time.Second) // the pool refills
		start := time.Now()
		sb, err := engine.Start(ctx, engine.Config{Server: url, APIKey: benchKey})
		if err != nil {
			return failed(f, err)
		}
		s.addDuration(time.Since(start))
		sb.Stop(ctx)
	}
	return fill(f, &s)
}

// manyClients is the rate of `true` with clients at once, each its own
// connection to one sandbox of the server.
func manyClients(ctx context.Context, url, id string, clients, each int) figure {
	f := figure{Name: fmt.Sprintf("execute `true` through the server, %d clients at once", clients), Via: "Go", Unit: "calls/s",
		Command: fmt.Sprintf("%d goroutines, each engine.Connect and %d executes, one sandbox", clients, each)}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sb, err := engine.Connect(ctx, id, engine.RemoteOptions{Server: url, APIKey: benchKey})
			for i := 0; err == nil && i < each; i++ {
				_, err = sb.Execute(ctx, engine.ExecRequest{Command: "true"})
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return failed(f, err)
		}
	}
	var s sample
	s.add(float64(clients*each) / time.Since(start).Seconds())
	return fill(f, &s)
}
