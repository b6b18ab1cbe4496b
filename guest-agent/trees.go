package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/quicksand-go/quicksand/internal/protocol"
	"github.com/quicksand-go/quicksand/internal/tree"
)

// Trees (a folder with everything in it, or one file) travel as tar
// streams (internal/tree).

// writeTree unpacks the tar body at ?path, which must not exist yet, as
// ?user.
func (s *server) writeTree(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	path := q.Get("path")
	err := checkPath(path)
	var n int64
	if err == nil {
		err = asUser(q.Get("user"), func() error {
			n, err = tree.Unpack(path, r.Body)
			return err
		})
	}
	var bad *tree.BadStreamError
	switch {
	case errors.As(err, &bad), errors.Is(err, tree.ErrExists):
		writeError(w, http.StatusBadRequest, err.Error())
	case err != nil:
		answerFileError(w, pathError(path, err))
	default:
		writeJSON(w, http.StatusOK, protocol.FileWritten{Bytes: n})
	}
}

// readTree answers with a tar stream of ?path, read as ?user.
func (s *server) readTree(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	path := q.Get("path")
	err := checkPath(path)
	if err == nil {
		err = asUser(q.Get("user"), func() error {
			if err := readable(path); err != nil {
				return err
			}
			w.Header().Set("Content-Type", "application/x-tar")
			w.WriteHeader(http.StatusOK)
			// The status is out: a failure now (a folder inside that
			// the user may not read) cuts the stream short before tar's
			// end-of-archive marker, which the reader refuses.
			if err := tree.Pack(w, path); err != nil {
				fmt.Fprintf(os.Stderr, "quicksand-agent: tar of %s: %v\n", path, err)
			}
			return nil
		})
	}
	if err != nil {
		answerFileError(w, pathError(path, err))
	}
}

// readable fails as the tree's packing would at its root: a file the user
// may not read, or a folder it may not list, is refused with a status
// before the stream begins.
func readable(path string) error {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSymlink != 0 {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if fi.IsDir() {
		if _, err := f.Readdirnames(1); err != nil && err != io.EOF {
			return err
		}
	}
	return nil
}
