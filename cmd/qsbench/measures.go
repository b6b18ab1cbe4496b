package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quicksand-go/quicksand/capi/wire"
	"github.com/quicksand-go/quicksand/engine"
)

func fill(f figure, s *sample) figure {
	f.Runs = len(s.values)
	f.Median, f.P99, f.Min, f.Max = s.median(), s.quantile(0.99), s.min(), s.max()
	return f
}

func failed(f figure, err error) figure {
	f.Failed = err.Error()
	return f
}

func coldStart(ctx context.Context, name string, cfg engine.Config, n int) figure {
	f := figure{Name: name, Via: "Go", Unit: "s", Warmup: 1, Command: "engine.Start(ColdBoot) until an authenticated /ping (BootTiming.Ready)"}
	var s sample
	for i := 0; i < n+f.Warmup; i++ {
		sb, err := engine.Start(ctx, cfg)
		if err != nil {
			return failed(f, err)
		}
		if i >= f.Warmup {
			s.add(sb.BootTiming().Ready.Seconds())
		}
		sb.Stop(ctx)
	}
	return fill(f, &s)
}

// warmStart measures starts resumed from a template. The first start of
// the run may build the template: it is the warm-up, reported apart.
func warmStart(ctx context.Context, cfg engine.Config, label string, n int) []figure {
	f := figure{Name: "warm start to ready (resumed from template)" + label, Via: "Go", Unit: "s", Warmup: 1,
		Command: "engine.Start with a template in place, until the agent took its new token"}
	first := figure{Name: "first start of an image (builds the template)" + label, Via: "Go", Unit: "s", Runs: 1,
		Command: "engine.Start with an empty template folder"}
	dir, err := os.MkdirTemp("", "qsbench-templates")
	if err != nil {
		return []figure{failed(f, err)}
	}
	defer os.RemoveAll(dir)
	var s sample
	for i := 0; i < n+1; i++ {
		start := time.Now()
		cfg.TemplateDir = dir
		sb, err := engine.Start(ctx, cfg)
		if err != nil {
			return []figure{failed(first, err), failed(f, err)}
		}
		if i == 0 {
			d := time.Since(start).Seconds()
			first.Median, first.Min, first.Max = d, d, d
		} else {
			s.add(sb.BootTiming().Ready.Seconds())
		}
		sb.Stop(ctx)
	}
	return []figure{first, fill(f, &s)}
}

func roundTrip(ctx context.Context, sb *engine.Sandbox, n int) figure {
	f := figure{Name: "execute `true`, round trip", Via: "Go", Unit: "ms", Warmup: 20, Command: `sb.Execute(ExecRequest{Command: "true"})`}
	var s sample
	for i := 0; i < n+f.Warmup; i++ {
		start := time.Now()
		if _, err := sb.Execute(ctx, engine.ExecRequest{Command: "true"}); err != nil {
			return failed(f, err)
		}
		if i >= f.Warmup {
			s.addDuration(time.Since(start))
		}
	}
	return fill(f, &s)
}

// alternate compares each binding with Go under the same conditions:
// rounds alternate a Go run (goRound, on a fresh sandbox) and a binding run
// (argv, in its own process, on its own fresh sandbox), and each figure is
// the median of its rounds' figures. The machine's load drifts over
// minutes; alternating keeps the drift out of the comparison. Each figure
// is the one named in proto, or, from a program, the one it prints whose
// name starts with prefix.
func alternate(proto figure, rounds int, goRound func() (float64, error), bindings [][]string, prefix string) []figure {
	var figs []figure
	for _, b := range bindings {
		goFig := proto
		goFig.Name = fmt.Sprintf("%s, alternating with Go (%s beside Go)", proto.Name, b[0])
		goFig.Via = "Go"
		bFig := goFig
		bFig.Via = b[0]
		var gs, bs sample
		for r := 0; r < rounds; r++ {
			g, err := goRound()
			if err != nil {
				return append(figs, failed(goFig, err))
			}
			gs.add(g)
			v, err := externalFigure(b[0], b[1:], prefix)
			if err != nil {
				return append(figs, fill(goFig, &gs), failed(bFig, err))
			}
			bs.add(v)
		}
		figs = append(figs, fill(goFig, &gs), fill(bFig, &bs))
	}
	return figs
}

// externalFigure runs a benchmark program and returns the median of the
// figure it prints whose name starts with prefix.
func externalFigure(via string, argv []string, prefix string) (float64, error) {
	for _, f := range external(via, argv) {
		if strings.HasPrefix(f.Name, prefix) && f.Failed == "" {
			return f.Median, nil
		}
	}
	return 0, fmt.Errorf("no %q figure from %s", prefix, strings.Join(argv, " "))
}

// onFreshSandbox runs measure on a sandbox of its own, started for it.
func onFreshSandbox(ctx context.Context, measure func(*engine.Sandbox) figure) (float64, error) {
	sb, err := engine.Start(ctx, engine.Config{})
	if err != nil {
		return 0, err
	}
	defer sb.Stop(ctx)
	f := measure(sb)
	if f.Failed != "" {
		return 0, fmt.Errorf("%s", f.Failed)
	}
	return f.Median, nil
}

// pairedRoundTrips compares each binding's execute round trip with Go's
// (see alternate), then the cost of the C boundary itself.
func pairedRoundTrips(ctx context.Context, n sizes, cBench string) []figure {
	bindings := [][]string{
		{"Python", "python3", "bindings/python/bench.py", "rtt", fmt.Sprint(n.pairExecs)},
		{"Node", "node", "bindings/node/bench.js", "rtt", fmt.Sprint(n.pairExecs)},
	}
	if cBench != "" {
		bindings = append([][]string{{"C", cBench, fmt.Sprint(n.pairExecs)}}, bindings...)
	}
	proto := figure{Name: "execute `true`, round trip", Unit: "ms", Warmup: 20,
		Command: fmt.Sprintf("%d rounds of %d executes; median of the rounds' medians", n.pairRounds, n.pairExecs)}
	figs := alternate(proto, n.pairRounds, func() (float64, error) {
		return onFreshSandbox(ctx, func(sb *engine.Sandbox) figure { return roundTrip(ctx, sb, n.pairExecs) })
	}, bindings, "execute `true`")
	// The cost of the boundary itself, beside the same work in Go.
	figs = append(figs, boundaryGo())
	if cBench != "" {
		for _, f := range external("C", []string{cBench, "20"}) {
			if strings.HasPrefix(f.Name, "call with no VM work") {
				figs = append(figs, f)
			}
		}
	}
	return figs
}

// pairedStreaming compares each binding's streaming throughput (a chunk
// callback that counts) with Go's: in each round, one command on a fresh
// sandbox that has run one command before, each in a process of its own
// (a process's first large output costs more than its later ones: its
// heap grows and its pages are touched for the first time), see
// alternate.
func pairedStreaming(n sizes, cBench string) []figure {
	size := fmt.Sprint(n.streamBytes)
	bindings := [][]string{
		{"Python", "python3", "bindings/python/bench.py", "stream", size},
		{"Node", "node", "bindings/node/bench.js", "stream", size},
	}
	if cBench != "" {
		bindings = append([][]string{{"C", cBench, "stream", size}}, bindings...)
	}
	const prefix = "text stdout throughput"
	proto := figure{Name: fmt.Sprintf("%s, %d MiB, with a chunk callback", prefix, n.streamBytes>>20), Unit: "MB/s",
		Command: fmt.Sprintf("%d rounds of `yes abcdefgh | head -c N` in a new process, on a fresh sandbox after one `true`; median of the rounds", n.pairRounds)}
	self, err := os.Executable()
	if err != nil {
		return []figure{failed(proto, err)}
	}
	return alternate(proto, n.pairRounds, func() (float64, error) {
		return externalFigure("Go", []string{self, "-stream-child", size}, prefix)
	}, bindings, prefix)
}

// streamOnce is the Go run of pairedStreaming: it prints one figure.
func streamOnce(size int) {
	ctx := context.Background()
	f := figure{Name: "text stdout throughput"}
	v, err := onFreshSandbox(ctx, func(sb *engine.Sandbox) figure {
		if _, err := sb.Execute(ctx, engine.ExecRequest{Command: "true"}); err != nil {
			return failed(f, err)
		}
		return throughput(ctx, sb, true, 1, size)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "qsbench -stream-child:", err)
		os.Exit(1)
	}
	f.Median, f.Min, f.Max, f.Runs = v, v, v, 1
	raw, _ := json.Marshal(f)
	fmt.Println(string(raw))
}

// boundaryGo is the Go half of the C boundary comparison: the work a C
// call does without a VM (decode a request, fail), called directly.
func boundaryGo() figure {
	f := figure{Name: "call with no VM work (decode a bad request)", Via: "Go", Unit: "µs", Command: "wire.DecodeRequest of a request without command, 100000 times"}
	req := []byte{0x81, 0xa3, 'c', 'w', 'd', 0xa1, '/'}
	var s sample
	for r := 0; r < 5; r++ {
		const calls = 100000
		start := time.Now()
		for i := 0; i < calls; i++ {
			if _, err := wire.DecodeRequest(req); err == nil {
				return failed(f, fmt.Errorf("the bad request decoded"))
			}
		}
		s.add(float64(time.Since(start).Nanoseconds()) / calls / 1000)
	}
	return fill(f, &s)
}

func throughput(ctx context.Context, sb *engine.Sandbox, streaming bool, n, size int) figure {
	cmd := fmt.Sprintf("yes abcdefgh | head -c %d", size)
	f := figure{Name: fmt.Sprintf("text stdout throughput, %d MiB, Execute", size>>20), Via: "Go", Unit: "MB/s", Command: cmd}
	if streaming {
		f.Name = fmt.Sprintf("text stdout throughput, %d MiB, ExecuteStream with callback", size>>20)
	}
	var s sample
	for i := 0; i < n; i++ {
		start := time.Now()
		got := 0
		req := engine.ExecRequest{Command: cmd, Timeout: 10 * time.Minute}
		var err error
		if streaming {
			req.OnOutput = func(_ engine.Stream, p []byte) error { got += len(p); return nil }
			_, err = sb.Execute(ctx, req)
		} else {
			var res *engine.ExecResult
			if res, err = sb.Execute(ctx, req); err == nil {
				got = len(res.Stdout)
			}
		}
		if err == nil && got != size {
			err = fmt.Errorf("received %d bytes of %d", got, size)
		}
		if err != nil {
			return failed(f, err)
		}
		s.add(float64(size) / 1e6 / time.Since(start).Seconds())
	}
	return fill(f, &s)
}

func checkpointRevert(ctx context.Context, sb *engine.Sandbox, n int) []figure {
	cp := figure{Name: "checkpoint, 512 MiB guest", Via: "Go", Unit: "s", Command: "sb.Checkpoint (QEMU savevm into the overlay)"}
	rv := figure{Name: "revert, 512 MiB guest", Via: "Go", Unit: "s", Command: "sb.Revert (loadvm, then the agent's clock and RNG)"}
	var sc, sr sample
	for i := 0; i < n; i++ {
		tag := fmt.Sprintf("bench%d", i)
		start := time.Now()
		if err := sb.Checkpoint(ctx, tag); err != nil {
			return []figure{failed(cp, err), failed(rv, err)}
		}
		sc.add(time.Since(start).Seconds())
		start = time.Now()
		if err := sb.Revert(ctx, tag); err != nil {
			return []figure{fill(cp, &sc), failed(rv, err)}
		}
		sr.add(time.Since(start).Seconds())
	}
	return []figure{fill(cp, &sc), fill(rv, &sr)}
}

// atOnce starts k sandboxes at the same moment from one template and
// reports the time until all answer and the memory each then takes.
func atOnce(ctx context.Context, k int) []figure {
	all := figure{Name: fmt.Sprintf("%d sandboxes at once: time until all answer", k), Via: "Go", Unit: "s", Runs: 1,
		Command: fmt.Sprintf("%d goroutines calling engine.Start together (warm)", k)}
	rss := figure{Name: fmt.Sprintf("%d sandboxes at once: host RSS per sandbox", k), Via: "Go", Unit: "MiB", Command: "/proc/<qemu>/smaps_rollup Rss, after all answered"}
	pss := figure{Name: fmt.Sprintf("%d sandboxes at once: host PSS per sandbox", k), Via: "Go", Unit: "MiB", Command: "/proc/<qemu>/smaps_rollup Pss"}
	if sb, err := engine.Start(ctx, engine.Config{}); err == nil { // the template exists
		sb.Stop(ctx)
	}
	sbs := make([]*engine.Sandbox, k)
	errs := make([]error, k)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range sbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sbs[i], errs[i] = engine.Start(ctx, engine.Config{BootTimeout: 5 * time.Minute})
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	defer func() {
		for _, sb := range sbs {
			if sb != nil {
				sb.Stop(ctx)
			}
		}
	}()
	for _, err := range errs {
		if err != nil {
			return []figure{failed(all, err), failed(rss, err), failed(pss, err)}
		}
	}
	all.Median, all.Min, all.Max = elapsed, elapsed, elapsed
	time.Sleep(time.Second)
	var sr, sp sample
	for _, sb := range sbs {
		r, p, err := procMemory(sb.PID())
		if err != nil {
			return []figure{all, failed(rss, err), failed(pss, err)}
		}
		sr.add(r)
		sp.add(p)
	}
	return []figure{all, fill(rss, &sr), fill(pss, &sp)}
}

func memory(sb *engine.Sandbox) []figure {
	time.Sleep(2 * time.Second) // let the idle guest settle
	mk := func(name string, pid int, pick func(rss, pss float64) float64, cmd string) figure {
		f := figure{Name: name, Via: "Go", Unit: "MiB", Runs: 1, Command: cmd}
		rss, pss, err := procMemory(pid)
		if err != nil {
			return failed(f, err)
		}
		v := pick(rss, pss)
		f.Median, f.Min, f.Max = v, v, v
		return f
	}
	rssOf := func(r, _ float64) float64 { return r }
	pssOf := func(_, p float64) float64 { return p }
	return []figure{
		mk("host RSS of one idle warm-started sandbox (512 MiB guest)", sb.PID(), rssOf, "/proc/<qemu>/smaps_rollup Rss"),
		mk("host PSS of one idle warm-started sandbox (512 MiB guest)", sb.PID(), pssOf, "/proc/<qemu>/smaps_rollup Pss"),
		mk("host RSS of the engine process (this benchmark)", os.Getpid(), rssOf, "/proc/self/smaps_rollup Rss"),
	}
}

// external runs a binding's benchmark program, which prints one JSON
// figure a line, and takes its figures.
func external(via string, argv []string) []figure {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	var figs []figure
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var f figure
		if json.Unmarshal(sc.Bytes(), &f) == nil && f.Name != "" {
			f.Via = via
			figs = append(figs, f)
		}
	}
	if err != nil || len(figs) == 0 {
		if err == nil {
			err = fmt.Errorf("it printed no figures")
		}
		figs = append(figs, figure{Name: "benchmark program " + strings.Join(argv, " "), Via: via, Failed: err.Error()})
	}
	return figs
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

// compressedKernelImage makes a copy of the default image's folder (by
// links) whose manifest boots the compressed kernel.
func compressedKernelImage() (string, func(), error) {
	im, err := engine.FindImage(engine.DefaultImage)
	if err != nil {
		return "", nil, err
	}
	if im.KernelCompressed == "" {
		return "", nil, fmt.Errorf("the image has no compressed kernel")
	}
	tmp, err := os.MkdirTemp("", "qsbench-image")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	dir := filepath.Join(tmp, "debian-vmlinuz")
	os.Mkdir(dir, 0o755)
	// The manifest as it is, but booting the compressed kernel (paths
	// made absolute, so nothing needs linking).
	raw, err := os.ReadFile(filepath.Join(im.Dir, "manifest.json"))
	if err != nil {
		cleanup()
		return "", nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		cleanup()
		return "", nil, err
	}
	m["kernel"], m["initrd"], m["rootfs"] = im.KernelCompressed, im.Initrd, im.RootFS
	raw, _ = json.Marshal(m)
	return dir, cleanup, os.WriteFile(filepath.Join(dir, "manifest.json"), raw, 0o644)
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

// imageBuild times `build/image.sh` for the host's architecture: with its
// caches in place (nothing to do), and, unless quick, from an empty output
// folder (downloads, debootstrap, initrd, disk), installed into a scratch
// image folder so the real one is not touched.
func imageBuild(quick bool) []figure {
	arch := engine.HostArch()
	agent := filepath.Join("out", "agent", "quicksand-agent-"+arch)
	timeBuild := func(name, out, images string) figure {
		f := figure{Name: name, Via: "shell", Unit: "s", Runs: 1, Command: fmt.Sprintf("bash build/image.sh %s %s %s %s", arch, agent, out, images)}
		start := time.Now()
		cmd := exec.Command("bash", "build/image.sh", arch, agent, out, images)
		if outp, err := cmd.CombinedOutput(); err != nil {
			return failed(f, fmt.Errorf("%v: %s", err, lastLines(string(outp), 3)))
		}
		d := time.Since(start).Seconds()
		f.Median, f.Min, f.Max = d, d, d
		return f
	}
	figs := []figure{timeBuild("image build, cached (nothing changed)", filepath.Join("out", "image"), engine.DefaultImageDir())}
	if quick {
		return figs
	}
	tmp, err := os.MkdirTemp("", "qsbench-build")
	if err != nil {
		return append(figs, failed(figure{Name: "image build, cold", Via: "shell"}, err))
	}
	defer os.RemoveAll(tmp)
	return append(figs, timeBuild("image build, cold (empty caches; apt packages already installed)", filepath.Join(tmp, "out"), filepath.Join(tmp, "images")))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}
