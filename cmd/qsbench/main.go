// Command qsbench measures the engine on this machine and prints a table:
// cold start to ready, execute round trip, streaming throughput and memory.
// `make bench` runs it. Warm-up runs are discarded and counted apart; a
// figure that failed shows as failed, never as zero.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/quicksand-go/quicksand/engine"
	"github.com/quicksand-go/quicksand/engine/image"
)

// figure is one row of the report.
type figure struct {
	Name    string  `json:"name"`
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
}

func main() {
	quick := flag.Bool("quick", false, "fewer runs")
	jsonOut := flag.String("json", "", "also write the report as JSON to this file")
	flag.Parse()
	runs := map[bool]struct{ boots, execs, streams int }{false: {7, 500, 3}, true: {3, 100, 1}}[*quick]

	ctx := context.Background()
	r := &report{When: time.Now().UTC().Format(time.RFC3339), CPU: cpuModel(), QEMU: qemuVersion()}
	add := func(f figure) {
		r.Figures = append(r.Figures, f)
		if f.Failed != "" {
			fmt.Fprintf(os.Stderr, "  %-44s FAILED: %s\n", f.Name, f.Failed)
		} else {
			fmt.Fprintf(os.Stderr, "  %-44s median %.2f %s\n", f.Name, f.Median, f.Unit)
		}
	}

	fmt.Fprintln(os.Stderr, "== cold start")
	add(coldStart(ctx, "cold start to ready (uncompressed kernel)", engine.Config{}, runs.boots))
	if dir, err := compressedKernelImage(); err == nil {
		add(coldStart(ctx, "cold start to ready (compressed kernel)", engine.Config{Image: dir}, runs.boots))
		defer os.RemoveAll(filepath.Dir(dir))
	} else {
		add(figure{Name: "cold start to ready (compressed kernel)", Failed: err.Error()})
	}

	sb, err := engine.Start(ctx, engine.Config{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "qsbench: cannot start a sandbox:", err)
		os.Exit(1)
	}
	defer sb.Stop(ctx)
	r.Accel = string(sb.Accelerator())

	// Memory first, while the sandbox is idle and has not moved any data.
	fmt.Fprintln(os.Stderr, "== memory")
	for _, f := range memory(sb) {
		add(f)
	}
	fmt.Fprintln(os.Stderr, "== execute")
	add(roundTrip(ctx, sb, runs.execs))
	fmt.Fprintln(os.Stderr, "== streaming")
	add(throughput(ctx, sb, true, runs.streams))
	add(throughput(ctx, sb, false, runs.streams))

	printTable(r)
	if *jsonOut != "" {
		raw, _ := json.MarshalIndent(r, "", "  ")
		if err := os.WriteFile(*jsonOut, raw, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "qsbench:", err)
		}
	}
}

func coldStart(ctx context.Context, name string, cfg engine.Config, n int) figure {
	f := figure{Name: name, Unit: "s", Warmup: 1, Command: "engine.Start → agent /ping answered (BootTiming.Ready)"}
	var s sample
	for i := 0; i < n+f.Warmup; i++ {
		sb, err := engine.Start(ctx, cfg)
		if err != nil {
			f.Failed = err.Error()
			return f
		}
		if i >= f.Warmup {
			s.add(sb.BootTiming().Ready.Seconds())
		}
		sb.Stop(ctx)
	}
	return fill(f, &s)
}

func roundTrip(ctx context.Context, sb *engine.Sandbox, n int) figure {
	f := figure{Name: "execute `true`, round trip (Go API)", Unit: "ms", Warmup: 20, Command: "sb.Execute(ExecRequest{Command: \"true\"})"}
	var s sample
	for i := 0; i < n+f.Warmup; i++ {
		start := time.Now()
		if _, err := sb.Execute(ctx, engine.ExecRequest{Command: "true"}); err != nil {
			f.Failed = err.Error()
			return f
		}
		if i >= f.Warmup {
			s.addDuration(time.Since(start))
		}
	}
	return fill(f, &s)
}

const streamBytes = 256 << 20

func throughput(ctx context.Context, sb *engine.Sandbox, streaming bool, n int) figure {
	cmd := fmt.Sprintf("yes abcdefgh | head -c %d", streamBytes)
	f := figure{Name: "text stdout throughput, Execute", Unit: "MB/s", Warmup: 0, Command: cmd}
	if streaming {
		f.Name = "text stdout throughput, ExecuteStream (callback)"
	}
	var s sample
	for i := 0; i < n; i++ {
		start := time.Now()
		got := 0
		req := engine.ExecRequest{Command: cmd, Timeout: 10 * time.Minute}
		var res *engine.ExecResult
		var err error
		if streaming {
			res, err = sb.ExecuteStream(ctx, req, func(_ engine.Stream, p []byte) { got += len(p) })
		} else {
			res, err = sb.Execute(ctx, req)
			if err == nil {
				got = len(res.Stdout)
			}
		}
		if err == nil && got != streamBytes {
			err = fmt.Errorf("received %d bytes of %d", got, streamBytes)
		}
		if err != nil {
			f.Failed = err.Error()
			return f
		}
		s.add(float64(streamBytes) / 1e6 / time.Since(start).Seconds())
	}
	return fill(f, &s)
}

func memory(sb *engine.Sandbox) []figure {
	time.Sleep(2 * time.Second) // let the idle guest settle
	rss, pss, err := procMemory(sb.PID())
	mk := func(name string, v float64, cmd string) figure {
		f := figure{Name: name, Unit: "MiB", Median: v, Min: v, Max: v, Runs: 1, Command: cmd}
		if err != nil {
			f.Failed = err.Error()
		}
		return f
	}
	self, _, selfErr := procMemory(os.Getpid())
	engineFig := mk("host RSS of the engine process", self, "/proc/self/smaps_rollup Rss")
	if selfErr != nil {
		engineFig.Failed = selfErr.Error()
	}
	return []figure{
		mk("host RSS of one idle sandbox (512 MiB guest)", rss, "/proc/<qemu>/smaps_rollup Rss"),
		mk("host PSS of one idle sandbox (512 MiB guest)", pss, "/proc/<qemu>/smaps_rollup Pss"),
		engineFig,
	}
}

// procMemory reads Rss and Pss (MiB) from /proc/<pid>/smaps_rollup.
func procMemory(pid int) (rss, pss float64, err error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "Rss:":
			rss = kb / 1024
		case "Pss:":
			pss = kb / 1024
		}
	}
	return rss, pss, nil
}

func fill(f figure, s *sample) figure {
	f.Runs = len(s.values)
	f.Median, f.P99, f.Min, f.Max = s.median(), s.quantile(0.99), s.min(), s.max()
	return f
}

// compressedKernelImage makes a copy of the default image's folder (by
// links) whose manifest boots the compressed kernel.
func compressedKernelImage() (string, error) {
	im, err := image.Resolve(engine.DefaultImage, image.SearchDirs(nil))
	if err != nil {
		return "", err
	}
	if im.Manifest.KernelCompressed == "" {
		return "", fmt.Errorf("the image has no compressed kernel")
	}
	tmp, err := os.MkdirTemp("", "qsbench-image")
	if err != nil {
		return "", err
	}
	dir := filepath.Join(tmp, "debian-vmlinuz")
	os.Mkdir(dir, 0o755)
	for _, name := range []string{im.Manifest.KernelCompressed, im.Manifest.Initrd, im.Manifest.RootFS} {
		if err := os.Symlink(filepath.Join(im.Dir, name), filepath.Join(dir, name)); err != nil {
			return "", err
		}
	}
	m := im.Manifest
	m.Kernel = m.KernelCompressed
	raw, _ := json.Marshal(m)
	return dir, os.WriteFile(filepath.Join(dir, "manifest.json"), raw, 0o644)
}

func cpuModel() string {
	raw, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
