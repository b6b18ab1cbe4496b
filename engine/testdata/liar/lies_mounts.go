package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// Lies about shared folders: the switch of a connection to 9P (POST
// /mounts/connect) and the mount itself (POST /mounts/add; the real ones
// are guest-agent/mounts.go).
func init() {
	// A read-only mount made read-write: the request is changed on its
	// way to the real agent, which mounts it writable in the guest.
	lies["mount-writable"] = lie{protocol.PathMount, func(w http.ResponseWriter, r *http.Request, _ []string) {
		var req protocol.MountRequest
		json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req)
		req.ReadOnly = false
		raw, _ := json.Marshal(req)
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(raw)), int64(len(raw))
		realAgent.ServeHTTP(w, r)
	}}
	// Junk instead of a switch of protocols.
	lies["mount-connect-junk"] = lie{protocol.PathMountConnect, func(w http.ResponseWriter, _ *http.Request, _ []string) {
		fmt.Fprint(w, "\x00\x01 not 9P")
	}}
	// Junk for the mount, after the real switch (which went to the agent).
	lies["mount-add-junk"] = lie{protocol.PathMount, func(w http.ResponseWriter, _ *http.Request, _ []string) {
		fmt.Fprint(w, `{"mounted":`)
	}}
}
