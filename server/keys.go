package server

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/pkg/errors"
)

// minKeyLength refuses keys short enough to guess.
const minKeyLength = 16

// keyring holds the digests of the API keys. Each key is a tenant, named
// by a prefix of its digest (never the key itself) in logs and folders.
type keyring struct {
	digests [][sha256.Size]byte
}

// loadKeys reads a keys file: one key a line, '#' starts a comment, blank
// lines are skipped. The file must belong to the server's user and be
// readable by nobody else: a key readable by another local user is that
// user's way in.
func loadKeys(path string) (*keyring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, errors.Wrap(err, "reading the keys file")
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, errors.Wrap(err, "reading the keys file")
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.Errorf("keys file %s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, errors.Errorf("keys file %s is readable or writable by other users (mode %04o): chmod 600 it", path, fi.Mode().Perm())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return nil, errors.Errorf("keys file %s belongs to uid %d, not to the server's user (uid %d)", path, st.Uid, os.Geteuid())
	}
	k := &keyring{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		key := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(key, '#'); i >= 0 {
			key = strings.TrimSpace(key[:i])
		}
		if key == "" {
			continue
		}
		if len(key) < minKeyLength || strings.ContainsAny(key, " \t") {
			return nil, errors.Errorf("keys file %s, line %d: a key is one word of at least %d characters", path, line, minKeyLength)
		}
		k.digests = append(k.digests, sha256.Sum256([]byte(key)))
	}
	if err := sc.Err(); err != nil {
		return nil, errors.Wrap(err, "reading the keys file")
	}
	if len(k.digests) == 0 {
		return nil, errors.Errorf("keys file %s holds no key", path)
	}
	return k, nil
}

// tenant returns the tenant of key, or "" when it is no key of the ring.
// Every digest is compared, in constant time, whatever matches: the time
// taken says nothing of which key, or how much of one, was right.
func (k *keyring) tenant(key string) string {
	d := sha256.Sum256([]byte(key))
	found := -1
	for i := range k.digests {
		if subtle.ConstantTimeCompare(d[:], k.digests[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return ""
	}
	return tenantName(k.digests[found])
}

// tenantName names a tenant by the first 8 bytes of its key's digest.
func tenantName(d [sha256.Size]byte) string { return hex.EncodeToString(d[:8]) }

// newKeysFile writes a keys file holding one fresh key, owner-only, for a
// server started without --keys, and returns the key.
func newKeysFile(path string, random func([]byte) error) (string, error) {
	b := make([]byte, 32)
	if err := random(b); err != nil {
		return "", err
	}
	key := hex.EncodeToString(b)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", errors.Wrap(err, "making a keys file")
	}
	_, err = fmt.Fprintf(f, "# API keys of quicksand serve: one a line; each key is a tenant\n%s\n", key)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return key, errors.Wrap(err, "writing the keys file")
}
