package main

import (
	"crypto/subtle"
	"os"
	"path/filepath"
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
