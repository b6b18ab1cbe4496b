// Command qsbench measures Quicksand-Go on this machine through every
// layer (Go, C, Python, Node) and writes one report: a Markdown table on
// stdout, JSON to -json. `make bench` runs it. Warm-up runs are discarded
// and counted apart; a figure that failed shows as failed, never as zero.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/quicksand-go/quicksand/engine"
)

// figure is one row of the report.
type figure struct {
	Name    string  `json:"name"`
	Via     string  `json:"via"` // Go, C, Python, Node, shell
	Unit    string  `json:"unit"`
	Median  float64 `json:"median"`
	P99     float64 `json:"p99,omitempty"`
	Min     float64 `json:"min"`
	Max     float64 `json:"max"`
	Runs    int     `json:"runs"`
	Warmup  int     `json:"warmup"`
	Failed  string  `json:"failed,omitempty"`
	Command string  `json:"command"`
}

type report struct {
	Figures []figure `json:"figures"`
	Accel   string   `json:"accelerator"`
	QEMU    string   `json:"qemu"`
	CPU     string   `json:"cpu"`
	When    string   `json:"when"`
	Quick   bool     `json:"quick"`
}

// sizes are the run counts of a full and a quick report.
type sizes struct {
	boots, warm, execs, streams, snapshots int
	pairRounds, pairExecs                  int
	streamBytes                            int
	atOnce                                 []int
	density                                int // idle sandboxes at once
}

var fullSizes = sizes{pairRounds: 5, pairExecs: 100, boots: 5, warm: 20, execs: 500, streams: 3, snapshots: 5, streamBytes: 256 << 20, atOnce: []int{1, 5, 10, 20}, density: 200}
var quickSizes = sizes{pairRounds: 2, pairExecs: 50, boots: 2, warm: 8, execs: 100, streams: 1, snapshots: 2, streamBytes: 64 << 20, atOnce: []int{1, 5}, density: 20}

func main() {
	quick := flag.Bool("quick", false, "fewer runs (make bench QUICK=1)")
	jsonOut := flag.String("json", "", "also write the report as JSON to this file")
	cBench := flag.String("c-bench", "", "the C benchmark program to run")
	bindingsOnly := flag.Bool("bindings-only", false, "measure only the bindings beside Go (round trips, streaming, warm starts)")
	mountsOnly := flag.Bool("mounts-only", false, "measure only shared folders")
	processesOnly := flag.Bool("processes-only", false, "measure only background processes and terminals")
	poolOnly := flag.Bool("pool-only", false, "measure only starts from a pool (Go and Python)")
	serverOnly := flag.Bool("server-only", false, "measure only quicksand serve beside the library used directly")
	codeOnly := flag.Bool("code-only", false, "measure only the code interpreter (debian-python)")
	transportsOnly := flag.Bool("transports-only", false, "measure only the engine's two transports to the agent, alternated")
	desktopOnly := flag.Bool("desktop-only", false, "measure only the desktop (debian-desktop)")
	densityOnly := flag.Int("density-only", 0, "measure only this many idle sandboxes, then 50 started at once")
	outputRSS := flag.String("output-rss", "", "only measure the host's memory for 1 GiB of output; the value is the C program that does it")
	outputChildMode := flag.String("output-child", "", "internal: a Go child of -output-rss (stream|collect)")
	streamChild := flag.Int("stream-child", 0, "internal: the Go run of the paired streaming figure, this many bytes")
	flag.Parse()
	n := fullSizes
	switch {
	case *outputChildMode != "":
		outputChild(*outputChildMode)
		return
	case *streamChild > 0:
		streamOnce(*streamChild)
		return
	case *outputRSS != "":
		outputMemory(*outputRSS)
		return
	}
	if *quick {
		n = quickSizes
	}
	ctx := context.Background()
	r := &report{When: time.Now().UTC().Format(time.RFC3339), CPU: cpuModel(), QEMU: qemuVersion(), Quick: *quick}
	add := func(figs ...figure) {
		for _, f := range figs {
			r.Figures = append(r.Figures, f)
			if f.Failed != "" {
				fmt.Fprintf(os.Stderr, "  %-52s FAILED: %s\n", f.Name+" ("+f.Via+")", firstLine(f.Failed))
			} else {
				fmt.Fprintf(os.Stderr, "  %-52s median %.3g %s\n", f.Name+" ("+f.Via+")", f.Median, f.Unit)
			}
		}
	}
	section := func(s string) { fmt.Fprintf(os.Stderr, "== %s\n", s) }

	if *mountsOnly {
		section("shared folders")
		add(mountFigures(ctx, n.streams, 256<<20, 10000, n.warm)...)
		finish(r, *jsonOut)
		return
	}
	if *poolOnly {
		section("pool")
		add(poolStarts(ctx, 20))
		add(external("Python", []string{"python3", "bindings/python/bench.py", "pool", "20"})...)
		finish(r, *jsonOut)
		return
	}
	if *serverOnly {
		section("server")
		add(serverFigures(ctx, n)...)
		finish(r, *jsonOut)
		return
	}
	if *desktopOnly {
		section("desktop")
		add(desktopFigures(ctx, n)...)
		finish(r, *jsonOut)
		return
	}
	if *transportsOnly {
		section("transport to the agent: mux port and port forward, alternated")
		add(transportFigures(ctx, n.warm, n.execs)...)
		finish(r, *jsonOut)
		return
	}
	if *codeOnly {
		section("code interpreter")
		add(codeFigures(ctx, n)...)
		finish(r, *jsonOut)
		return
	}
	if *densityOnly > 0 {
		section("density")
		add(densityFigures(ctx, *densityOnly, 50)...)
		finish(r, *jsonOut)
		return
	}
	if *processesOnly {
		section("background processes")
		sb, err := engine.Start(ctx, engine.Config{})
		if err != nil {
			fmt.Fprintln(os.Stderr, "qsbench: cannot start a sandbox:", err)
			os.Exit(1)
		}
		add(processFigures(ctx, sb, n.execs, 256<<20, n.warm)...)
		sb.Stop(ctx)
		finish(r, *jsonOut)
		return
	}
	if *bindingsOnly {
		bindingFigures(ctx, n, *cBench, add, section)
		finish(r, *jsonOut)
		return
	}
	section("start")
	add(coldStart(ctx, "cold start to ready, uncompressed kernel", engine.Config{ColdBoot: true}, n.boots))
	if dir, cleanup, err := compressedKernelImage(); err == nil {
		add(coldStart(ctx, "cold start to ready, compressed kernel", engine.Config{ColdBoot: true, Image: dir}, n.boots))
		cleanup()
	} else {
		add(figure{Name: "cold start to ready, compressed kernel", Via: "Go", Failed: err.Error()})
	}
	add(warmStart(ctx, engine.Config{}, "", n.warm)...)
	section("transport to the agent: mux port and port forward, alternated")
	add(transportFigures(ctx, n.warm, n.execs)...)
	add(coldStart(ctx, "cold start to ready, arm64 guest", engine.Config{ColdBoot: true, Image: "debian-arm64"}, n.boots))
	add(warmStart(ctx, engine.Config{Image: "debian-arm64"}, ", arm64 guest", n.warm)...)

	sb, err := engine.Start(ctx, engine.Config{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "qsbench: cannot start a sandbox:", err)
		os.Exit(1)
	}
	r.Accel = string(sb.Accelerator())
	section("memory of one idle sandbox")
	add(memory(sb)...)
	section("execute")
	add(roundTrip(ctx, sb, n.execs))
	section("network guard")
	add(guardCost(ctx, n)...)
	section("streaming")
	add(throughput(ctx, sb, true, n.streams, n.streamBytes), throughput(ctx, sb, false, n.streams, n.streamBytes))
	section("files")
	add(fileFigures(ctx, sb, n.streams, 256<<20, 1000)...)
	section("shared folders")
	add(mountFigures(ctx, n.streams, 256<<20, 10000, n.warm)...)
	section("background processes")
	add(processFigures(ctx, sb, n.execs, 256<<20, n.warm)...)
	section("checkpoint and revert")
	add(checkpointRevert(ctx, sb, n.snapshots)...)
	sb.Stop(ctx)

	section("many sandboxes at once")
	for _, k := range n.atOnce {
		add(atOnce(ctx, k)...)
	}
	section("density")
	add(densityFigures(ctx, n.density, 50)...)
	section("server")
	add(serverFigures(ctx, n)...)
	section("code interpreter")
	add(codeFigures(ctx, n)...)
	section("desktop")
	add(desktopFigures(ctx, n)...)
	section("image build")
	add(imageBuild(*quick)...)
	bindingFigures(ctx, n, *cBench, add, section)
	finish(r, *jsonOut)
}

// bindingFigures measures C, Python and Node beside Go.
func bindingFigures(ctx context.Context, n sizes, cBench string, add func(...figure), section func(string)) {
	section("bindings")
	add(pairedRoundTrips(ctx, n, cBench)...)
	add(pairedStreaming(n, cBench)...)
	add(external("Python", []string{"python3", "bindings/python/bench.py"})...)
	add(external("Node", []string{"node", "bindings/node/bench.js"})...)
	section("pool")
	add(poolStarts(ctx, 20))
	add(external("Python", []string{"python3", "bindings/python/bench.py", "pool", "20"})...)
}

// finish prints the table, and writes the JSON report when asked to.
// It exits with status 1 when a measurement failed: `make bench` fails.
func finish(r *report, jsonOut string) {
	printTable(r)
	if jsonOut != "" {
		raw, _ := json.MarshalIndent(r, "", "  ")
		if err := os.WriteFile(jsonOut, raw, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "qsbench:", err)
			os.Exit(1)
		}
	}
	for _, f := range r.Figures {
		if f.Failed != "" {
			fmt.Fprintf(os.Stderr, "qsbench: %q (%s) failed: %s\n", f.Name, f.Via, firstLine(f.Failed))
			os.Exit(1)
		}
	}
}

func firstLine(s string) string { return strings.SplitN(s, "\n", 2)[0] }
