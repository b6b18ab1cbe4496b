package main

import (
	"math"
	"sort"
	"time"
)

// sample is a set of measurements of one figure.
type sample struct {
	values []float64
}

func (s *sample) add(v float64) { s.values = append(s.values, v) }

func (s *sample) addDuration(d time.Duration) { s.add(float64(d.Nanoseconds()) / 1e6) }

// quantile returns the q-quantile by nearest rank (q in [0,1]).
func (s *sample) quantile(q float64) float64 {
	if len(s.values) == 0 {
		return math.NaN()
	}
	v := append([]float64(nil), s.values...)
	sort.Float64s(v)
	i := int(math.Ceil(q*float64(len(v)))) - 1
	return v[max(0, min(i, len(v)-1))]
}

func (s *sample) median() float64 { return s.quantile(0.5) }
func (s *sample) min() float64    { return s.quantile(0) }
func (s *sample) max() float64    { return s.quantile(1) }
