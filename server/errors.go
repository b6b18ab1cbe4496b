package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/quicksand-go/quicksand/engine"
	"github.com/quicksand-go/quicksand/internal/serverapi"
)

// kinds gives each engine error kind its name on the wire and its HTTP
// status. The code sent beside the name is the kind's number (the C ABI's
// QS_ERR_*), which the engine's remote client turns back into the Kind.
var kinds = map[engine.Kind]struct {
	name   string
	status int
}{
	engine.KindUnknown:        {"unknown", http.StatusInternalServerError},
	engine.KindInvalidConfig:  {"invalid_config", http.StatusBadRequest},
	engine.KindImageNotFound:  {"image_not_found", http.StatusNotFound},
	engine.KindBootFailed:     {"boot_failed", http.StatusInternalServerError},
	engine.KindBootTimeout:    {"boot_timeout", http.StatusGatewayTimeout},
	engine.KindNotRunning:     {"not_running", http.StatusConflict},
	engine.KindAuth:           {"auth", http.StatusUnauthorized},
	engine.KindTransport:      {"transport", http.StatusBadGateway},
	engine.KindBadRequest:     {"bad_request", http.StatusBadRequest},
	engine.KindCancelled:      {"cancelled", 499},
	engine.KindSnapshotFailed: {"snapshot", http.StatusInternalServerError},
	engine.KindResource:       {"resource", http.StatusServiceUnavailable},
	engine.KindNotFound:       {"not_found", http.StatusNotFound},
	engine.KindPermission:     {"permission", http.StatusForbidden},
}

// apiError is a failure of the server's own (a bad body, an unknown id),
// with the kind it is reported as.
func apiError(kind engine.Kind, format string, args ...any) error {
	return &engine.Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// errNoSandbox is the answer for an id the caller's key did not make,
// whether it exists or not: the same words, so that nothing tells them
// apart.
func errNoSandbox(id string) error {
	return apiError(engine.KindNotFound, "no sandbox %q", id)
}

// errorBody is err as the wire carries it, and its status.
func errorBody(err error) (serverapi.Error, int) {
	kind := engine.KindOf(err)
	k, ok := kinds[kind]
	if !ok {
		k = kinds[engine.KindUnknown]
	}
	return serverapi.Error{Error: serverapi.ErrorBody{Kind: k.name, Code: int(kind), Message: err.Error()}}, k.status
}

// writeError answers with err.
func writeError(w http.ResponseWriter, err error) {
	body, status := errorBody(err)
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// maxJSONBody bounds a JSON request body: the largest is an execute with
// its stdin, which has files for anything big.
const maxJSONBody = 16 << 20

// readJSON decodes the request's body into v, refusing unknown fields,
// trailing data and bodies past maxJSONBody.
func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return apiError(engine.KindBadRequest, "the request body is larger than %d bytes", maxJSONBody)
		}
		if errors.Is(err, io.EOF) {
			return apiError(engine.KindBadRequest, "the request needs a JSON body")
		}
		return apiError(engine.KindBadRequest, "the request body is not the JSON this route takes: %v", err)
	}
	if dec.More() {
		return apiError(engine.KindBadRequest, "the request body holds more than one JSON value")
	}
	return nil
}
