// Package quicksand holds what the whole project shares: its version. The
// Go API is package engine; the C library is capi.
package quicksand

import (
	_ "embed"
	"strings"
)

// versionFile is VERSION, the one place the version is written: the C
// library reports it, the Makefile and build/dist.sh read the file, and
// internal/contract's TestOneVersion holds every copy a file format forces
// (package.json, pyproject.toml, quicksand.h's QS_VERSION) to it.
//
//go:embed VERSION
var versionFile string

// Version is the project's version, "major.minor.patch".
var Version = strings.TrimSpace(versionFile)
