package server

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// metrics are the server's counters, given in Prometheus' text format.
type metrics struct {
	mu         sync.Mutex
	starts     int64
	startFails int64
	poolStarts int64 // creates handed to a pool (which starts one itself when none waits)
	stops      int64
	executes   int64
	startTime  summary
	requests   map[string]*summary // by route
	errors     map[string]int64    // by kind name
	accel      string              // the accelerator of the last sandbox started
}

// summary is a count and a sum of seconds.
type summary struct {
	count int64
	sum   float64
}

func newMetrics() *metrics {
	return &metrics{requests: map[string]*summary{}, errors: map[string]int64{}}
}

func (m *metrics) started(took time.Duration, accel string, pooled bool) {
	m.mu.Lock()
	m.starts++
	if pooled {
		m.poolStarts++
	}
	m.startTime.count++
	m.startTime.sum += took.Seconds()
	m.accel = accel
	m.mu.Unlock()
}

func (m *metrics) startFailed() { m.mu.Lock(); m.startFails++; m.mu.Unlock() }

func (m *metrics) sandboxStopped() { m.mu.Lock(); m.stops++; m.mu.Unlock() }

func (m *metrics) executed() { m.mu.Lock(); m.executes++; m.mu.Unlock() }

func (m *metrics) accelerator() string { m.mu.Lock(); defer m.mu.Unlock(); return m.accel }

func (m *metrics) request(route string, err error, took time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.requests[route]
	if s == nil {
		s = &summary{}
		m.requests[route] = s
	}
	s.count++
	s.sum += took.Seconds()
	if err != nil {
		body, _ := errorBody(err)
		m.errors[body.Error.Kind]++
	}
}

func (s *Server) metricsText(c *call) error {
	m := s.metrics
	var b strings.Builder
	m.mu.Lock()
	fmt.Fprintf(&b, "# TYPE quicksand_sandboxes gauge\nquicksand_sandboxes %d\n", s.reg.count.Load())
	fmt.Fprintf(&b, "# TYPE quicksand_sandbox_starts_total counter\nquicksand_sandbox_starts_total %d\n", m.starts)
	fmt.Fprintf(&b, "# TYPE quicksand_sandbox_pool_starts_total counter\nquicksand_sandbox_pool_starts_total %d\n", m.poolStarts)
	fmt.Fprintf(&b, "# TYPE quicksand_sandbox_start_failures_total counter\nquicksand_sandbox_start_failures_total %d\n", m.startFails)
	fmt.Fprintf(&b, "# TYPE quicksand_sandbox_stops_total counter\nquicksand_sandbox_stops_total %d\n", m.stops)
	fmt.Fprintf(&b, "# TYPE quicksand_executes_total counter\nquicksand_executes_total %d\n", m.executes)
	fmt.Fprintf(&b, "# TYPE quicksand_sandbox_start_seconds summary\nquicksand_sandbox_start_seconds_sum %g\nquicksand_sandbox_start_seconds_count %d\n",
		m.startTime.sum, m.startTime.count)
	b.WriteString("# TYPE quicksand_request_seconds summary\n")
	for _, route := range sortedKeys(m.requests) {
		r := m.requests[route]
		fmt.Fprintf(&b, "quicksand_request_seconds_sum{route=%q} %g\nquicksand_request_seconds_count{route=%q} %d\n", route, r.sum, route, r.count)
	}
	b.WriteString("# TYPE quicksand_request_errors_total counter\n")
	for _, kind := range sortedKeys(m.errors) {
		fmt.Fprintf(&b, "quicksand_request_errors_total{kind=%q} %d\n", kind, m.errors[kind])
	}
	m.mu.Unlock()
	c.answered = true
	c.w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	c.w.WriteHeader(http.StatusOK)
	_, err := c.w.Write([]byte(b.String()))
	return err
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
