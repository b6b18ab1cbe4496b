package engine

import (
	"strconv"
	"strings"
)

// ParseMemory reads a memory size as people write it: "512M", "512MiB",
// "2G", "2GiB", "1T", or a bare number of MiB ("512"). The result is in MiB.
// Bindings pass users' strings through this so every language accepts the
// same forms.
func ParseMemory(s string) (int, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "IB"), "B")
	mult := 1
	switch {
	case strings.HasSuffix(t, "K"):
		t, mult = t[:len(t)-1], -1024 // divide: KiB to MiB
	case strings.HasSuffix(t, "M"):
		t = t[:len(t)-1]
	case strings.HasSuffix(t, "G"):
		t, mult = t[:len(t)-1], 1024
	case strings.HasSuffix(t, "T"):
		t, mult = t[:len(t)-1], 1024*1024
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || n <= 0 {
		return 0, newError(KindInvalidConfig, nil, "config field memory: %q is not a size like \"512M\" or \"2G\"", s)
	}
	var mib float64
	if mult < 0 {
		mib = n / float64(-mult)
	} else {
		mib = n * float64(mult)
	}
	if mib != float64(int(mib)) {
		return 0, newError(KindInvalidConfig, nil, "config field memory: %q is not a whole number of MiB", s)
	}
	return int(mib), nil
}
