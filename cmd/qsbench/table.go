package main

import (
	"fmt"
	"os/exec"
	"strings"
)

func qemuVersion() string {
	out, err := exec.Command("qemu-system-x86_64", "--version").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

// printTable prints the report as Markdown, with the methods under it.
func printTable(r *report) {
	fmt.Printf("\n## Quicksand-Go benchmarks\n\n")
	quick := ""
	if r.Quick {
		quick = " · QUICK (fewer runs)"
	}
	fmt.Printf("accelerator: %s · %s · CPU: %s · %s%s\n\n", r.Accel, r.QEMU, r.CPU, r.When, quick)
	fmt.Println("| figure | via | median | p99 | min–max | runs (+warm-up) |")
	fmt.Println("| --- | --- | ---: | ---: | ---: | ---: |")
	for _, f := range r.Figures {
		if f.Failed != "" {
			fmt.Printf("| %s | %s | FAILED: %s | | | |\n", f.Name, f.Via, strings.ReplaceAll(firstLine(f.Failed), "|", "/"))
			continue
		}
		p99 := ""
		if f.Runs >= 20 {
			p99 = fmt.Sprintf("%.3g %s", f.P99, f.Unit)
		}
		fmt.Printf("| %s | %s | %.3g %s | %s | %.3g–%.3g | %d (+%d) |\n", f.Name, f.Via, f.Median, f.Unit, p99, f.Min, f.Max, f.Runs, f.Warmup)
	}
	fmt.Println("\n### Methods")
	fmt.Println("All figures come from this run on this machine (2 shared cores: noisy; compare rows of one run).")
	fmt.Println("Medians over the runs shown; warm-up runs are discarded. p99 only where there are at least 20 runs.")
	seen := map[string]bool{}
	for _, f := range r.Figures {
		key := f.Name + f.Via
		if f.Command != "" && !seen[key] {
			seen[key] = true
			fmt.Printf("- %s (%s): %s\n", f.Name, f.Via, f.Command)
		}
	}
	fmt.Println("\nReproduce: `make bench` (or `make bench QUICK=1`); the JSON beside this table has every number.")
}
