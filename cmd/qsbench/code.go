package main

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/quicksand-go/quicksand/engine"
)

// The code interpreter's figures (issue 29): run_code on a warm context,
// a sandbox's start to its first result (warm start, pool), a chart's time
// to PNG, and the debian-python image's size.

var pythonConfig = engine.Config{Image: "debian-python", MemoryMiB: 1024}

func codeFigures(ctx context.Context, n sizes) []figure {
	var out []figure
	sb, err := engine.Start(ctx, pythonConfig)
	if err != nil {
		return []figure{failed(figure{Name: "run_code", Via: "Go"}, err)}
	}
	defer sb.Stop(ctx)
	out = append(out,
		codeRuns(ctx, sb, "run_code(\"1+1\") on a warm Python context", engine.CodeRequest{Code: "1+1"}, n.execs),
		codeRuns(ctx, sb, "run_code(\"true\") in a bash context", engine.CodeRequest{Code: "true", Language: engine.LanguageBash}, n.execs/5),
		codeRuns(ctx, sb, "a matplotlib chart to PNG", engine.CodeRequest{
			Code: "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [3, 1, 2])\nplt.show()"}, 10),
		firstResult(ctx, "warm start to the first result of run_code(\"1+1\")", n.warm, func() (*engine.Sandbox, error) {
			return engine.Start(ctx, pythonConfig)
		}),
	)
	pool, err := engine.NewPool(pythonConfig, 2)
	if err != nil {
		return append(out, failed(figure{Name: "pool start to the first result", Via: "Go"}, err))
	}
	defer pool.Close()
	out = append(out, firstResult(ctx, "start from a pool to the first result of run_code(\"1+1\")", n.warm, func() (*engine.Sandbox, error) {
		deadline := time.Now().Add(3 * time.Minute)
		for pool.Waiting() < 2 {
			if time.Now().After(deadline) {
				return nil, errors.New("the pool did not fill in 3 minutes")
			}
			time.Sleep(20 * time.Millisecond)
		}
		return pool.Start(ctx)
	}))
	return append(out, imageSize("debian-python-"+hostArch()))
}

// codeRuns times req's run_code round trip on sb, after 5 runs of warm-up.
func codeRuns(ctx context.Context, sb *engine.Sandbox, name string, req engine.CodeRequest, n int) figure {
	f := figure{Name: name, Via: "Go", Unit: "ms", Warmup: 5, Command: "sb.RunCode(ctx, CodeRequest{Code: " + quoteCode(req.Code) + "})"}
	var s sample
	for i := 0; i < n+f.Warmup; i++ {
		start := time.Now()
		ex, err := sb.RunCode(ctx, req)
		if err == nil && ex.Error != nil {
			err = ex.Error
		}
		if err != nil {
			return failed(f, err)
		}
		if i >= f.Warmup {
			s.addDuration(time.Since(start))
		}
	}
	return fill(f, &s)
}

// firstResult times start() and a first run_code("1+1") together; the
// sandbox is stopped before the next (not timed).
func firstResult(ctx context.Context, name string, n int, start func() (*engine.Sandbox, error)) figure {
	f := figure{Name: name, Via: "Go", Unit: "s", Warmup: 1, Command: "start, then sb.RunCode(ctx, CodeRequest{Code: \"1+1\"}) until its result"}
	var s sample
	for i := 0; i < n+f.Warmup; i++ {
		began := time.Now()
		sb, err := start()
		if err != nil {
			return failed(f, err)
		}
		ex, err := sb.RunCode(ctx, engine.CodeRequest{Code: "1+1"})
		took := time.Since(began)
		sb.Stop(ctx)
		if err == nil && ex.Text() != "2" {
			err = errors.New("1+1 gave " + ex.Text())
		}
		if err != nil {
			return failed(f, err)
		}
		if i >= f.Warmup {
			s.add(took.Seconds())
		}
	}
	return fill(f, &s)
}

// imageSize is the image folder's size on disk (its root disk is sparse).
func imageSize(name string) figure {
	f := figure{Name: "image " + name + " on disk", Via: "shell", Unit: "MiB", Runs: 1, Command: "du -s of the installed image folder"}
	dirs := filepath.SplitList(os.Getenv("QUICKSAND_IMAGE_PATH"))
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".local/share/quicksand/images"))
	}
	for _, d := range dirs {
		var blocks int64
		err := filepath.WalkDir(filepath.Join(d, name), func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if info, err := e.Info(); err == nil {
				if st, ok := info.Sys().(*syscall.Stat_t); ok {
					blocks += st.Blocks
				}
			}
			return nil
		})
		if err == nil {
			mib := float64(blocks*512) / (1 << 20)
			f.Median, f.Min, f.Max = mib, mib, mib
			return f
		}
	}
	return failed(f, errors.New("image "+name+" is not installed"))
}

// hostArch is the image suffix of the host's architecture.
func hostArch() string {
	if runtime.GOARCH == "arm64" {
		return "arm64"
	}
	return "x86_64"
}

func quoteCode(code string) string {
	if len(code) > 40 {
		code = code[:40] + "…"
	}
	return strconv.Quote(code)
}
