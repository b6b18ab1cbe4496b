package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	pathpkg "path"
	"path/filepath"
	"strings"
	"time"

	"github.com/quicksand-go/quicksand/internal/protocol"
	"github.com/quicksand-go/quicksand/internal/tree"
)

// Files in the guest: written and read as streams through the agent (a file
// of any size moves with bounded memory on both sides), trees as tar
// streams. Every path in the guest is absolute. What is written goes to a
// temporary name and is renamed into place once complete.

// FileInfo describes a file in the guest.
type FileInfo struct {
	Name    string
	Type    string // "file", "dir", "symlink" or "other"
	Size    int64
	Mode    fs.FileMode // permission bits (and setuid, setgid, sticky as 0o7000)
	ModTime time.Time
	Target  string // a symlink's target
}

// FileOptions are the options of every file call. The zero value is the
// default of each; an option a call does not use (Mode given to Stat) is a
// KindBadRequest error rather than silently ignored.
type FileOptions struct {
	// User does the operation as this guest user (a name or uid; default
	// root): its permissions apply and what it makes belongs to it.
	// Every file call takes it.
	User string
	// Mode is the permission bits, setuid, setgid and sticky included
	// (fs.ModeSetuid, fs.ModeSetgid, fs.ModeSticky), of what WriteFile and
	// MakeDir make (default 0644 for a file, 0755 for a folder); the
	// guest's umask does not apply.
	Mode fs.FileMode
	// Parents: MakeDir also makes the missing folders above the path, and
	// an existing folder is no error (its mode is left as it is).
	Parents bool
	// Recursive: Remove takes a folder with everything in it.
	Recursive bool
	// MaxSize bounds what ReadFile takes (default DefaultMaxRead): a
	// larger file fails the call before more than MaxSize bytes reach its
	// writer. Negative: no bound, for a writer that is not memory. Download
	// streams a file of any size to the host's disk.
	MaxSize int64
}

// DefaultMaxRead is how much ReadFile takes when FileOptions.MaxSize is
// not set: as much as a command's result keeps of a stream. The guest is
// not trusted, and a file can be larger than the host's memory
// (/proc/kcore, a sparse file) or, from a lying agent, have no end.
const DefaultMaxRead = protocol.DefaultMaxOutput

// WriteFile writes r's bytes as the file at path (replacing it whole, or
// not at all) and returns how many it wrote.
func (sb *Sandbox) WriteFile(ctx context.Context, path string, r io.Reader, opts FileOptions) (int64, error) {
	if err := opts.only("WriteFile", optMode); err != nil {
		return 0, err
	}
	if err := checkPaths("writing", path); err != nil {
		return 0, err
	}
	if sb.remote != nil {
		return sb.remote.writeFile(ctx, path, r, opts)
	}
	var n int64
	err := sb.fileCall(ctx, "writing "+path, func(ctx context.Context) (err error) {
		n, err = sb.client.WriteFile(ctx, path, opts.User, protocol.UnixMode(opts.Mode), noteProgress(ctx, r))
		return err
	})
	return n, err
}

// ReadFile writes the bytes of the file at path to w and returns how many,
// reading it as opts.User (default root), at most opts.MaxSize bytes. A
// writer with a Grow(int) method (a bytes.Buffer) is told the file's size
// first.
func (sb *Sandbox) ReadFile(ctx context.Context, path string, w io.Writer, opts FileOptions) (int64, error) {
	if err := opts.only("ReadFile", optMaxSize); err != nil {
		return 0, err
	}
	if err := checkPaths("reading", path); err != nil {
		return 0, err
	}
	limit := opts.MaxSize
	if limit == 0 {
		limit = DefaultMaxRead
	}
	if sb.remote != nil {
		return sb.remote.readFile(ctx, path, w, opts.User, limit)
	}
	what := "reading " + path
	var n int64
	err := sb.fileCall(ctx, what, func(ctx context.Context) error {
		body, size, err := sb.client.ReadFile(ctx, path, opts.User)
		if err != nil {
			return err
		}
		defer body.Close()
		n, err = copyFile(ctx, what, w, body, size, limit)
		return err
	})
	return n, err
}

// copyFile copies a file's bytes, body (of size bytes, -1 when not said),
// to w, at most limit bytes (0 or less: no limit); body is untrusted, and
// may say one size and send another.
func copyFile(ctx context.Context, what string, w io.Writer, body io.Reader, size, limit int64) (n int64, err error) {
	if limit > 0 && size > limit {
		return 0, tooBig(what, fmt.Sprintf("it is %d bytes", size), limit)
	}
	if g, ok := w.(interface{ Grow(int) }); ok && size > 0 && limit > 0 {
		g.Grow(int(size))
	}
	r := noteProgress(ctx, body)
	if limit > 0 {
		r = io.LimitReader(r, limit)
	}
	if n, err = io.Copy(w, r); err != nil {
		return n, err
	}
	// An answer of unknown length (the agent always says it; a lying
	// one may not) that goes on past the limit.
	var more [1]byte
	if size < 0 && n == limit {
		if m, _ := io.ReadFull(body, more[:]); m > 0 {
			return n, tooBig(what, fmt.Sprintf("more than %d bytes came", limit), limit)
		}
	}
	if size >= 0 && n != size {
		return n, fmt.Errorf("got %d of its %d bytes", n, size)
	}
	return n, nil
}

// tooBig is the error of a read past its limit: what was found, and the
// two ways on.
func tooBig(what, found string, limit int64) error {
	return newError(KindBadRequest, nil, "%s: %s, more than its limit of %d bytes (max_size): give a larger max_size, or download it to a host file", what, found, limit)
}

// Stat describes path (a symlink itself, not its target). A path that does
// not exist is a KindNotFound error.
func (sb *Sandbox) Stat(ctx context.Context, path string, opts FileOptions) (*FileInfo, error) {
	res, err := sb.fileOp(ctx, "Stat", protocol.FileOp{Op: "stat", Path: path}, opts, "stat", "stat of "+path)
	if err != nil {
		return nil, err
	}
	if res.Info == nil {
		return nil, newError(KindNotFound, nil, "stat of %s: no such file or folder", path)
	}
	info, err := checkedInfo(*res.Info, pathpkg.Base(path))
	if err != nil {
		return nil, newError(KindTransport, err, "stat of %s", path)
	}
	return &info, nil
}

// Exists says whether path exists (a dangling symlink does).
func (sb *Sandbox) Exists(ctx context.Context, path string, opts FileOptions) (bool, error) {
	res, err := sb.fileOp(ctx, "Exists", protocol.FileOp{Op: "stat", Path: path}, opts, "looking for a path", "looking for "+path)
	return err == nil && res.Info != nil, err
}

// ListDir lists the folder at path.
func (sb *Sandbox) ListDir(ctx context.Context, path string, opts FileOptions) ([]FileInfo, error) {
	res, err := sb.fileOp(ctx, "ListDir", protocol.FileOp{Op: "list", Path: path}, opts, "listing", "listing "+path)
	if err != nil {
		return nil, err
	}
	out := make([]FileInfo, len(res.Entries))
	for i, e := range res.Entries {
		if out[i], err = checkedInfo(e, ""); err != nil {
			return nil, newError(KindTransport, err, "listing %s", path)
		}
	}
	return out, nil
}

// MakeDir makes the folder path with opts.Mode; with opts.Parents, also
// the missing folders above it, and an existing folder is no error (its
// mode is left as it is).
func (sb *Sandbox) MakeDir(ctx context.Context, path string, opts FileOptions) error {
	op := protocol.FileOp{Op: "mkdir", Path: path, Parents: opts.Parents, Mode: protocol.UnixMode(opts.Mode)}
	_, err := sb.fileOp(ctx, "MakeDir", op, opts, "making a folder", "making the folder "+path, optMode, optParents)
	return err
}

// Remove removes path; a folder that is not empty only with
// opts.Recursive.
func (sb *Sandbox) Remove(ctx context.Context, path string, opts FileOptions) error {
	op := protocol.FileOp{Op: "remove", Path: path, Recursive: opts.Recursive}
	_, err := sb.fileOp(ctx, "Remove", op, opts, "removing", "removing "+path, optRecursive)
	return err
}

// Rename renames (moves) src to dst within the guest.
func (sb *Sandbox) Rename(ctx context.Context, src, dst string, opts FileOptions) error {
	_, err := sb.fileOp(ctx, "Rename", protocol.FileOp{Op: "rename", Path: src, Dest: dst}, opts, "renaming", "renaming "+src+" to "+dst)
	return err
}

// Upload copies the host's file or folder hostPath (with everything in it:
// modes, symlinks as symlinks, empty folders, modification times) to
// guestPath, which must not exist yet. What it makes belongs to opts.User
// (default root), who must be allowed to write there.
func (sb *Sandbox) Upload(ctx context.Context, hostPath, guestPath string, opts FileOptions) error {
	if err := opts.only("Upload"); err != nil {
		return err
	}
	if err := checkPaths("uploading", hostPath, guestPath); err != nil {
		return err
	}
	if _, err := os.Lstat(hostPath); err != nil {
		return newError(KindNotFound, err, "uploading %s", hostPath)
	}
	pr := packTree(hostPath)
	defer pr.Close()
	return sb.writeTree(ctx, "uploading "+hostPath+" to "+guestPath, guestPath, pr, opts.User)
}

// packTree is hostPath as a tar stream, packed as it is read (close it).
func packTree(hostPath string) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tree.Pack(pw, hostPath)) }()
	return pr
}

// Download copies the guest's file or folder guestPath to hostPath, which
// must not exist yet, reading it as opts.User (default root); a failure
// leaves nothing there.
func (sb *Sandbox) Download(ctx context.Context, guestPath, hostPath string, opts FileOptions) error {
	if err := opts.only("Download"); err != nil {
		return err
	}
	if err := checkPaths("downloading", guestPath, hostPath); err != nil {
		return err
	}
	if _, err := os.Lstat(hostPath); err == nil {
		return newError(KindBadRequest, nil, "downloading %s: %s already exists", guestPath, hostPath)
	}
	if fi, err := os.Stat(filepath.Dir(hostPath)); err != nil || !fi.IsDir() {
		return newError(KindNotFound, err, "downloading %s: no folder %s on the host", guestPath, filepath.Dir(hostPath))
	}
	from := "the guest"
	if sb.remote != nil {
		from = "the server"
	}
	return sb.readTree(ctx, "downloading "+guestPath+" to "+hostPath, guestPath, opts.User, func(ctx context.Context, body io.Reader) error {
		return unpackTree(ctx, hostPath, body, from)
	})
}

// unpackTree unpacks a tar stream from an untrusted side (from: "the
// guest", "the server") at hostPath.
func unpackTree(ctx context.Context, hostPath string, body io.Reader, from string) error {
	_, err := tree.Unpack(hostPath, noteProgress(ctx, body))
	var bad *tree.BadStreamError
	if errors.As(err, &bad) {
		// The answer is at fault, not the caller's request (tree.Unpack
		// says what it refuses from an untrusted side): %v, so that it is
		// a transport error, not a bad request.
		return fmt.Errorf("%s sent a tree the host refuses: %v", from, err)
	}
	if err != nil {
		return fmt.Errorf("writing %s on the host: %w", hostPath, err)
	}
	return nil
}

// fileOp does one of the small operations as opts.User; call is the
// method's name (for an option it does not take, one of uses), op names
// the operation without its paths (for the error about a NUL byte in
// one), what with them.
func (sb *Sandbox) fileOp(ctx context.Context, call string, fop protocol.FileOp, opts FileOptions, op, what string, uses ...fileOption) (protocol.FileOpResult, error) {
	var res protocol.FileOpResult
	if err := opts.only(call, uses...); err != nil {
		return res, err
	}
	fop.User = opts.User
	if err := checkPaths(op, fop.Path, fop.Dest); err != nil {
		return res, err
	}
	if sb.remote != nil {
		return sb.remote.fileOp(ctx, fop, what)
	}
	err := sb.fileCall(ctx, what, func(ctx context.Context) (err error) {
		res, err = sb.client.FileOp(ctx, fop)
		return err
	})
	return res, err
}

// checkedInfo takes what the agent said of a file, refusing what no file
// can be: the guest is untrusted, and a caller may join a listed name to a
// host path. name is the name a stat must give ("" for a listing's entry,
// which must be one path element).
func checkedInfo(i protocol.FileInfo, name string) (FileInfo, error) {
	bad := func(what string) (FileInfo, error) {
		return FileInfo{}, errors.New("the agent answered an impossible file: " + what)
	}
	switch {
	case name == "" && (i.Name == "" || i.Name == "." || i.Name == ".." || strings.ContainsAny(i.Name, "/\x00")):
		return bad(fmt.Sprintf("the name %q", i.Name))
	case name != "" && i.Name != name:
		return bad(fmt.Sprintf("the name %q for %q", i.Name, name))
	case i.Type != "file" && i.Type != "dir" && i.Type != "symlink" && i.Type != "other":
		return bad(fmt.Sprintf("the type %q", i.Type))
	case i.Size < 0:
		return bad(fmt.Sprintf("the size %d", i.Size))
	case i.Mode&^0o7777 != 0:
		return bad(fmt.Sprintf("the mode %#o", i.Mode))
	case strings.Contains(i.Target, "\x00") || i.Target != "" && i.Type != "symlink":
		return bad(fmt.Sprintf("the link target %q", i.Target))
	}
	return FileInfo{Name: i.Name, Type: i.Type, Size: i.Size, Mode: protocol.FileMode(i.Mode), ModTime: time.Unix(0, i.MtimeNs), Target: i.Target}, nil
}
