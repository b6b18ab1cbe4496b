package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/quicksand-go/quicksand/engine"
)

// densityFigures starts n idle sandboxes (warm starts, one after another),
// lets them settle, and reports what each costs the host: memory (PSS,
// so pages shared between the QEMU processes are counted once), how much
// of it is the guest's RAM, idle CPU, and how fast any one of them still
// answers. Then it stops them all and starts startTogether at once
// (atOnce, as the "many sandboxes at once" section does).
func densityFigures(ctx context.Context, n, startTogether int) []figure {
	via := fmt.Sprintf("Go, %d idle", n)
	pssF := figure{Name: "memory (PSS) per idle sandbox", Via: via, Unit: "MiB",
		Command: "sum of Pss in /proc/PID/smaps of every QEMU, over n, 10 s after the last start"}
	ramF := figure{Name: "  of which the guest's RAM", Via: via, Unit: "MiB",
		Command: "Pss of the guest RAM mapping, the template's ram file mapped copy-on-write (/proc/PID/smaps)"}
	tcgF := figure{Name: "  of which translated code (TCG)", Via: via, Unit: "MiB",
		Command: "Pss of the largest anonymous mapping, TCG's code buffer (/proc/PID/smaps); none under KVM"}
	cpuF := figure{Name: "idle CPU, all of them together", Via: via, Unit: "% of a core",
		Command: "utime+stime of every QEMU over 10 s"}
	trueF := figure{Name: "execute `true` on one of them", Via: via, Unit: "ms",
		Command: "Execute(true), each time on a sandbox picked at random"}
	all := []figure{pssF, ramF, tcgF, cpuF, trueF}
	fail := func(err error) []figure {
		for i := range all {
			all[i] = failed(all[i], err)
		}
		return all
	}

	var sbs []*engine.Sandbox
	defer func() {
		for _, sb := range sbs {
			sb.Stop(ctx)
		}
	}()
	for i := 0; i < n; i++ {
		sb, err := engine.Start(ctx, engine.Config{})
		if err != nil {
			return fail(fmt.Errorf("start %d of %d: %w", i+1, n, err))
		}
		sbs = append(sbs, sb)
		if _, err := sb.Execute(ctx, engine.ExecRequest{Command: "true"}); err != nil {
			return fail(err)
		}
	}
	time.Sleep(10 * time.Second)

	var pss, ram, tcg sample
	var total float64
	for _, sb := range sbs {
		m, err := qemuPSS(sb.PID())
		if err != nil {
			return fail(err)
		}
		pss.add(m.all / 1024)
		ram.add(m.guestRAM / 1024)
		tcg.add(m.tcg / 1024)
		total += m.all / 1024
	}
	all[0] = fill(pssF, &pss)
	all[0].Command += fmt.Sprintf("; %.0f MiB in all", total)
	all[1] = fill(ramF, &ram)
	all[2] = fill(tcgF, &tcg)

	before, err := cpuTicks(sbs)
	if err != nil {
		return fail(err)
	}
	time.Sleep(10 * time.Second)
	after, err := cpuTicks(sbs)
	if err != nil {
		return fail(err)
	}
	var cpu sample
	cpu.add(float64(after-before) / 100 / 10 * 100) // clock ticks are 1/100 s
	all[3] = fill(cpuF, &cpu)

	var lat sample
	for i := 0; i < 100; i++ {
		sb := sbs[rand.Intn(len(sbs))]
		start := time.Now()
		if _, err := sb.Execute(ctx, engine.ExecRequest{Command: "true"}); err != nil {
			return fail(err)
		}
		lat.addDuration(time.Since(start))
	}
	all[4] = fill(trueF, &lat)

	for _, sb := range sbs {
		sb.Stop(ctx)
	}
	sbs = nil
	return append(all, atOnce(ctx, startTogether)...)
}

// qemuMemory is a QEMU process's proportional set size, in KiB, and two
// parts of it.
type qemuMemory struct {
	all      float64
	guestRAM float64 // the mapping of the template's ram file
	tcg      float64 // the largest anonymous mapping: TCG's code buffer
}

// qemuPSS reads /proc/PID/smaps.
func qemuPSS(pid int) (qemuMemory, error) {
	var m qemuMemory
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return m, err
	}
	defer f.Close()
	var name string
	var size, biggestAnon float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		if strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") { // a mapping's first line
			name = ""
			if len(fields) >= 6 {
				name = fields[5]
			}
			continue
		}
		v, _ := strconv.ParseFloat(fields[1], 64)
		switch fields[0] {
		case "Size:":
			size = v
		case "Pss:":
			m.all += v
			switch {
			case strings.HasSuffix(name, "/ram"):
				m.guestRAM += v
			case name == "" && size > biggestAnon:
				biggestAnon, m.tcg = size, v
			}
		}
	}
	return m, sc.Err()
}

// cpuTicks sums user and system clock ticks of the sandboxes' QEMUs.
func cpuTicks(sbs []*engine.Sandbox) (int64, error) {
	var sum int64
	for _, sb := range sbs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", sb.PID()))
		if err != nil {
			return 0, err
		}
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		for _, i := range []int{11, 12} { // utime, stime (fields 14 and 15)
			v, _ := strconv.ParseInt(fields[i], 10, 64)
			sum += v
		}
	}
	return sum, nil
}
