// Package cliflags holds the flag types the command-line programs share
// (cmd/quicksand, and quicksand serve, which the library runs too).
package cliflags

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Seconds is a duration given as seconds ("600", "1.5") or with a unit
// ("90s", "10m", "1h").
type Seconds time.Duration

func (s *Seconds) String() string { return time.Duration(*s).String() }

func (s *Seconds) Set(v string) error {
	if n, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && n > 0 {
		*s = Seconds(time.Duration(n * float64(time.Second)))
		return nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d <= 0 {
		return fmt.Errorf("%q is not a duration like 600, 90s, 10m or 1h", v)
	}
	*s = Seconds(d)
	return nil
}

// List is a flag that may be given more than once.
type List []string

func (l *List) String() string     { return fmt.Sprint(*l) }
func (l *List) Set(v string) error { *l = append(*l, v); return nil }
