package main

import (
	"context"
	"crypto/subtle"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
)

// Sealing: a VM frozen into a state that others resume (a template every
// warm start clones, a save) must not wake up trusting the token it had.
// That token is in guest RAM, so root in any clone can read it there, and
// a local user who has it could drive every new clone through its port
// forward before the engine rekeys it.
//
// So the agent ties its token to the QEMU that handed it over: it keeps,
// beside the token, what that QEMU's fw_cfg token file held then (keyedBy),
// and on every request reads the fw_cfg file again. A VM resumed in another
// QEMU finds another file there (the engine writes each QEMU's owner-only),
// and from its first instruction on the agent is sealed: it refuses every
// request but a /resume whose bearer token is the one the new QEMU holds.
// Nothing has to happen before the freeze, so no freeze can miss it; a
// revert or a pool's rekey stays in the same QEMU and is not affected.

// sealed says whether the agent runs in another QEMU than the one its token
// came from, and what the current one's fw_cfg holds.
func (s *server) sealed() (bool, string) {
	current := readToken(s.settings.fwCfgToken)
	return current != *s.keyedBy.Load(), current
}

// connSeal is what one connection learnt of the seal: reading fw_cfg costs
// about 0.3 ms under TCG (a 5 ms round trip), so a connection found to be
// in the QEMU the token was taken under is not asked again. A connection
// cannot move to another QEMU: one frozen into a template or a save has no
// host end in the QEMU that resumes it (slirp's sockets are not carried
// over), so nobody can send on it there.
type connSeal struct{ open atomic.Bool }

type connSealKey struct{}

// withConnSeal gives each connection its connSeal (http.Server.ConnContext).
func withConnSeal(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connSealKey{}, &connSeal{})
}

// sealedFor is sealed for r, asked once per connection while the answer is
// "open" (a sealed connection asks again: a /resume may open the agent).
func (s *server) sealedFor(r *http.Request) (bool, string) {
	cs, _ := r.Context().Value(connSealKey{}).(*connSeal)
	if cs != nil && cs.open.Load() {
		return false, ""
	}
	sealed, current := s.sealed()
	if cs != nil && !sealed {
		cs.open.Store(true)
	}
	return sealed, current
}

// unsealedBy says whether a sealed agent may take /resume from the holder
// of got: the token in this QEMU's fw_cfg.
func unsealedBy(got, current string) bool {
	return len(current) >= minTokenLen && subtle.ConstantTimeCompare([]byte(got), []byte(current)) == 1
}

// keyedByPath is where the fw_cfg content the token was taken under is
// kept, beside the token state file, so that an agent server that restarts
// before a resumed VM is rekeyed is still sealed.
func keyedByPath(tokenState string) string {
	return filepath.Join(filepath.Dir(tokenState), "keyed-by")
}

// keepKeyedBy records fw as what the token was taken under (see
// keyedByPath); like keepToken, whole or not at all.
func (s settings) keepKeyedBy(fw string) error {
	if s.tokenState == "" {
		return nil
	}
	path := keyedByPath(s.tokenState)
	if err := os.WriteFile(path+".new", []byte(fw), 0o600); err != nil {
		return err
	}
	return os.Rename(path+".new", path)
}
