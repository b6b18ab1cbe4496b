package engine

import (
	"context"
	"io"
)

// Trees as tar streams, for callers that move them on without unpacking
// them here: the server hands them between its clients and the guest, and
// the unpacking is done by whoever receives them (the guest's agent, or
// the client's Download, which refuses what a hostile guest could put in
// a tar). Upload and Download are these with the host's side packed and
// unpacked here.

// WriteTree unpacks tarStream (a POSIX tar) at guestPath, which must not
// exist yet, as opts.User (default root).
func (sb *Sandbox) WriteTree(ctx context.Context, guestPath string, tarStream io.Reader, opts FileOptions) error {
	if err := opts.only("WriteTree"); err != nil {
		return err
	}
	if err := checkPaths("writing a tree", guestPath); err != nil {
		return err
	}
	return sb.writeTree(ctx, "writing a tree at "+guestPath, guestPath, tarStream, opts.User)
}

// ReadTree writes the guest's file or folder guestPath, read as opts.User,
// to w as a tar stream and returns how many bytes. The stream comes from
// the guest unchecked: unpack it only with a reader that trusts nothing
// in it (Download does).
func (sb *Sandbox) ReadTree(ctx context.Context, guestPath string, w io.Writer, opts FileOptions) (int64, error) {
	if err := opts.only("ReadTree"); err != nil {
		return 0, err
	}
	if err := checkPaths("reading a tree", guestPath); err != nil {
		return 0, err
	}
	var n int64
	err := sb.readTree(ctx, "reading the tree at "+guestPath, guestPath, opts.User, func(_ context.Context, body io.Reader) (err error) {
		n, err = io.Copy(w, noteProgress(ctx, body))
		return err
	})
	return n, err
}

// writeTree sends a tar stream to the guest (or the server) to unpack.
func (sb *Sandbox) writeTree(ctx context.Context, what, guestPath string, tarStream io.Reader, user string) error {
	if sb.remote != nil {
		return sb.remote.writeTree(ctx, what, guestPath, tarStream, user)
	}
	return sb.fileCall(ctx, what, func(ctx context.Context) error {
		_, err := sb.client.WriteTree(ctx, guestPath, user, noteProgress(ctx, tarStream))
		return err
	})
}

// readTree hands the tar stream of guestPath to consume, which notes its
// progress (for the stall watch) as it reads.
func (sb *Sandbox) readTree(ctx context.Context, what, guestPath, user string, consume func(context.Context, io.Reader) error) error {
	if sb.remote != nil {
		return sb.remote.readTree(ctx, what, guestPath, user, consume)
	}
	return sb.fileCall(ctx, what, func(ctx context.Context) error {
		body, err := sb.client.ReadTree(ctx, guestPath, user)
		if err != nil {
			return err
		}
		defer body.Close()
		return consume(ctx, body)
	})
}
