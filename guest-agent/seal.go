package main

import (
	"crypto/subtle"
	"net/http"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// Sealing: a VM about to be frozen into a state that others will resume (a
// template every warm start clones, a save) must not wake up trusting the
// token it had. That token is in guest RAM, so root in any clone can read
// it there, and a local user who has it could drive every new clone
// through its port forward before the engine rekeys it.
//
// So the engine seals the agent (/seal) before it freezes such a VM. A
// sealed agent forgets its token: it refuses every request but /resume,
// and takes /resume only from whoever presents the token of the QEMU it
// now runs in, read afresh from fw_cfg. That file is one the engine wrote
// owner-only for this very QEMU, so only the sandbox's owner has it; the
// frozen RAM holds nothing that opens a clone. The seal is kept in the
// token state file, so an agent server that restarts while sealed stays
// sealed.

// sealedMarker is what the token state file holds while the agent is
// sealed: shorter than any token /resume accepts, so never a token.
const sealedMarker = "sealed"

// seal handles /seal.
func (s *server) seal(w http.ResponseWriter, _ *http.Request) {
	if err := s.settings.keepToken(sealedMarker); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.sealed.Store(true)
	writeJSON(w, http.StatusOK, protocol.SealResult{Sealed: true})
}

// unsealedBy says whether a sealed agent may take /resume from the holder
// of got: the token in this QEMU's fw_cfg, read now (a resumed VM's fw_cfg
// device belongs to the new QEMU, not the one that booted it).
func (s *server) unsealedBy(got string) bool {
	want := readToken(s.settings.fwCfgToken)
	if len(want) < minTokenLen {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
