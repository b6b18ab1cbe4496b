package image

import (
	"fmt"
	"path/filepath"
	"strings"
)

// maxNameLen bounds an image or save name.
const maxNameLen = 128

// IsPath says whether s names a folder by path rather than by name: an
// absolute path, or a relative one that says so by starting with "./".
// Anything else is a name, looked up in (or, for a save, written to) the
// image folders only.
func IsPath(s string) bool {
	return filepath.IsAbs(s) || strings.HasPrefix(s, "./")
}

// CheckName says why s is not a valid image or save name: 1 to 128 ASCII
// letters, digits, '.', '_' and '-', not starting with '.' or '-'. So a
// name can never climb out of the folder it is looked up in ("../x"), name
// a subfolder ("a/b"), or be taken for an option.
func CheckName(s string) error {
	bad := func(why string) error {
		return fmt.Errorf("%s is not a valid name (%s); a path must be absolute or start with ./", Quote(s), why)
	}
	switch {
	case s == "":
		return fmt.Errorf("no name given")
	case len(s) > maxNameLen:
		return bad(fmt.Sprintf("longer than %d characters", maxNameLen))
	case s[0] == '.' || s[0] == '-':
		return bad("it starts with '" + s[:1] + "'")
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return bad(fmt.Sprintf("%q is not allowed: only letters, digits, '.', '_' and '-'", c))
		}
	}
	return nil
}

// Quote quotes s for a message, at most its first 64 bytes: a name or path
// given by a caller can be of any size.
func Quote(s string) string {
	const most = 64
	if len(s) <= most {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q... (%d bytes)", s[:most], len(s))
}
