package engine

import (
	"context"
	"sort"
	"strconv"
	"testing"
	"time"
)

// TestWarmStartLegs measures (QS_LEGS_BENCH=rounds) where a warm start's
// time goes (issue 31), step by step, on each transport to the agent in
// turn: the mux port (the default) and the port forward
// (TransportEnv=forward). Both clone the same template. For each start: QEMU started,
// its monitor answering, the template's state loaded, the VM running, the
// agent rekeyed (ready); then the first execute("true") and the second.
func TestWarmStartLegs(t *testing.T) {
	rounds := legsRounds(t)
	ctx := context.Background()
	cfg := Config{TemplateDir: t.TempDir()}
	startSandbox(t, cfg).Stop(ctx) // builds the template
	steps := []string{"QEMU started", "monitor answering", "state loaded", "VM running", "agent rekeyed (ready)",
		"first execute(\"true\") after", "the second"}
	transports := []string{"mux", "forward"}
	samples := map[string][][]float64{}
	for _, tr := range transports {
		samples[tr] = make([][]float64, len(steps))
	}
	for r := 0; r < rounds; r++ {
		for _, tr := range transports {
			t.Setenv(TransportEnv, tr)
			sb := startSandbox(t, cfg)
			bt := sb.BootTiming()
			got := []time.Duration{bt.QEMUStarted, sb.warmSteps.qmpConnected, sb.warmSteps.stateLoaded, bt.AgentListening, bt.Ready}
			for range 2 {
				start := time.Now()
				if _, err := sb.Execute(ctx, ExecRequest{Command: "true"}); err != nil {
					t.Fatal(err)
				}
				got = append(got, time.Since(start))
			}
			if opened := int64(0); sb.muxLink != nil {
				opened = sb.muxLink.Opened()
				if (tr == "mux") != (opened > 0) {
					t.Fatalf("%s: %d calls over the mux link", tr, opened)
				}
			} else if tr == "mux" {
				t.Fatal("no mux link")
			}
			for i, d := range got {
				samples[tr][i] = append(samples[tr][i], float64(d.Microseconds())/1000)
			}
			sb.Stop(ctx)
		}
	}
	t.Logf("%d warm starts on each transport, alternated; median (p90) in ms, steps since the start began:", rounds)
	t.Logf("  %-32s %-16s %-16s", "", transports[0], transports[1])
	for i, name := range steps {
		line := ""
		for _, tr := range transports {
			s := samples[tr][i]
			sort.Float64s(s)
			line += strconv.FormatFloat(s[len(s)/2], 'f', 1, 64) + " (" + strconv.FormatFloat(s[len(s)*9/10], 'f', 1, 64) + ")"
			line += "          "[:max(1, 16-len(line)%16)]
		}
		t.Logf("  %-32s %s", name, line)
	}
}
