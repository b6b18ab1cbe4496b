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

// printTable prints the report as Markdown.
func printTable(r *report) {
	fmt.Printf("\n## Quicksand-Go engine benchmarks\n\n")
	fmt.Printf("accelerator: %s · %s · CPU: %s · %s\n\n", r.Accel, r.QEMU, r.CPU, r.When)
	fmt.Println("| figure | median | p99 | min–max | runs (+warm-up) |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: |")
	for _, f := range r.Figures {
		if f.Failed != "" {
			fmt.Printf("| %s | FAILED: %s | | | |\n", f.Name, strings.ReplaceAll(firstLine(f.Failed), "|", "/"))
			continue
		}
		p99 := ""
		if f.Runs >= 20 {
			p99 = fmt.Sprintf("%.2f %s", f.P99, f.Unit)
		}
		fmt.Printf("| %s | %.2f %s | %s | %.2f–%.2f | %d (+%d) |\n", f.Name, f.Median, f.Unit, p99, f.Min, f.Max, f.Runs, f.Warmup)
	}
	fmt.Println("\nMethods: each figure's command is in the JSON report; medians over the runs shown, warm-up runs discarded.")
}

func firstLine(s string) string { return strings.SplitN(s, "\n", 2)[0] }
