package main

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// minTokenLen keeps a resumed sandbox from taking a guessable token.
const minTokenLen = 32

// resume handles /resume: a new token, the host's clock, fresh randomness,
// and after a revert a sync frame on the output channel.
// Done in that order of checks, so a bad request changes nothing.
func (s *server) resume(w http.ResponseWriter, r *http.Request) {
	var req protocol.ResumeRequest
	if !readJSON(w, r, &req) {
		return
	}
	if len(req.Token) < minTokenLen {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("token must be at least %d characters", minTokenLen))
		return
	}
	seed, err := base64.StdEncoding.DecodeString(req.SeedB64)
	if err != nil || len(seed) < 32 {
		writeError(w, http.StatusBadRequest, "seed_b64 must be at least 32 bytes of base64")
		return
	}
	res := protocol.ResumeResult{Resumed: true}
	if s.ownsGuest {
		if req.TimeUnixNano > 0 {
			ts := unix.NsecToTimespec(req.TimeUnixNano)
			res.ClockSet = unix.ClockSettime(unix.CLOCK_REALTIME, &ts) == nil
		}
		res.Reseeded = reseed(seed) == nil
	}
	// One resume at a time: a retry the host sends while an earlier try
	// still runs must not interleave with it (both write token.new and
	// rename it; one would fail with the other's file gone).
	s.resuming.Lock()
	defer s.resuming.Unlock()
	// Kept before it is used: an agent that restarts must come back with
	// this token, never the one the VM booted with, and know which QEMU
	// handed it over (seal.go).
	_, current := s.sealed()
	if err := s.settings.keepToken(req.Token); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if err := s.settings.keepKeyedBy(current); err != nil {
		writeError(w, http.StatusInternalServerError, "keeping the token: "+err.Error())
		return
	}
	token := req.Token
	s.token.Store(&token)
	s.keyedBy.Store(&current)
	if req.ChannelSync != 0 {
		res.ChannelSynced = s.ch.sync(req.ChannelSync)
	}
	writeJSON(w, http.StatusOK, res)
}

// Linux RNG ioctls (include/uapi/linux/random.h).
const (
	rndAddEntropy  = 0x40085203 // _IOW('R', 0x03, int[2])
	rndReseedCRNG  = 0x5207     // _IO('R', 0x07)
	bitsPerByte    = 8
	randPoolHeader = 8 // struct rand_pool_info: int entropy_count; int buf_size;
)

// reseed credits seed to the kernel's input pool and makes the kernel
// reseed its CRNG from it at once, so two VMs resumed from one snapshot
// diverge immediately (as the vmgenid device also makes them, where the
// machine has one).
func reseed(seed []byte) error {
	f, err := os.OpenFile("/dev/urandom", os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	info := make([]byte, randPoolHeader+len(seed))
	binary.NativeEndian.PutUint32(info[0:], uint32(len(seed)*bitsPerByte))
	binary.NativeEndian.PutUint32(info[4:], uint32(len(seed)))
	copy(info[randPoolHeader:], seed)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), rndAddEntropy, uintptr(unsafe.Pointer(&info[0]))); e != 0 {
		return e
	}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), rndReseedCRNG, 0); e != 0 {
		return e
	}
	return nil
}

// warmResumeCodecs builds encoding/json's codecs of /resume's request and
// answer when the agent starts. A clone's first request is a resume: made
// here, in the boot that a template freezes, no clone builds them again
// (nor, under TCG, translates the code that builds them).
func warmResumeCodecs() {
	var req protocol.ResumeRequest
	_ = json.Unmarshal([]byte(`{}`), &req)
	_, _ = json.Marshal(protocol.ResumeResult{})
}
