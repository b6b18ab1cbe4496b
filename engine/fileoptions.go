package engine

import (
	"slices"
	"strings"
)

// fileOption names a FileOptions field that only some calls use (User is
// every call's).
type fileOption string

const (
	optMode      fileOption = "Mode"
	optParents   fileOption = "Parents"
	optRecursive fileOption = "Recursive"
	optMaxSize   fileOption = "MaxSize"
)

// only fails when opts sets a field that call does not use: an option
// silently ignored (a Mode given to Stat, Recursive to MakeDir) would
// leave the caller believing it applied.
func (o FileOptions) only(call string, uses ...fileOption) error {
	var unused []string
	for _, f := range []struct {
		name fileOption
		set  bool
	}{{optMode, o.Mode != 0}, {optParents, o.Parents}, {optRecursive, o.Recursive}, {optMaxSize, o.MaxSize != 0}} {
		if f.set && !slices.Contains(uses, f.name) {
			unused = append(unused, string(f.name))
		}
	}
	if len(unused) == 0 {
		return nil
	}
	return newError(KindBadRequest, nil, "%s does not take the option %s", call, strings.Join(unused, ", "))
}
