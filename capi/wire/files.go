package wire

import (
	"io/fs"
	"time"

	"github.com/quicksand-go/quicksand/engine"
	"github.com/quicksand-go/quicksand/internal/protocol"
)

// FileRequest is a decoded file-operation request (qs_sandbox_file_op,
// and the options of qs_sandbox_write_file and qs_sandbox_read_file).
type FileRequest struct {
	Op, Path, Dest string
	Parents        bool
	Recursive      bool
	Mode           fs.FileMode
	User           string
	MaxSize        int64         // read_file's limit (0: the default)
	Timeout        time.Duration // the whole call's (0: none of the caller's)
}

// DecodeFileRequest reads a file-operation map (include/quicksand.h).
func DecodeFileRequest(b []byte) (FileRequest, error) {
	var r FileRequest
	f, err := decodeMap(b, "file request", engine.KindBadRequest)
	if err != nil {
		return r, err
	}
	var mode int
	steps := []error{
		f.str("op", &r.Op),
		f.str("path", &r.Path),
		f.str("dest", &r.Dest),
		f.boolean("parents", &r.Parents),
		f.boolean("recursive", &r.Recursive),
		f.integer("mode", &mode),
		f.str("user", &r.User),
		byteCount(f, "max_size", &r.MaxSize),
		seconds(f, "timeout", &r.Timeout),
	}
	for _, err := range steps {
		if err != nil {
			return r, err
		}
	}
	if mode < 0 || mode > 0o7777 {
		return r, f.fail("mode", "%o is not permission bits", mode)
	}
	r.Mode = protocol.FileMode(uint32(mode))
	return r, f.unknown()
}

// fileInfoMap is a FileInfo as the C ABI gives it.
func fileInfoMap(i engine.FileInfo) map[string]any {
	m := map[string]any{"name": i.Name, "type": i.Type, "size": i.Size, "mode": protocol.UnixMode(i.Mode), "mtime": float64(i.ModTime.UnixNano()) / 1e9}
	if i.Target != "" {
		m["target"] = i.Target
	}
	return m
}

// EncodeFileResult encodes what a file operation answers: "exists" and
// "info" for stat, "entries" for list, nothing for the others.
func EncodeFileResult(info *engine.FileInfo, entries []engine.FileInfo, isList bool) []byte {
	m := map[string]any{}
	switch {
	case isList:
		list := make([]any, len(entries))
		for i, e := range entries {
			list[i] = fileInfoMap(e)
		}
		m["entries"] = list
	case info != nil:
		m["exists"], m["info"] = true, fileInfoMap(*info)
	default:
		m["exists"] = false
	}
	return encodeSorted(m)
}
