package main

import (
	"archive/tar"
	"io"
	"net/http"

	"github.com/quicksand-go/quicksand/internal/protocol"
	tt "github.com/quicksand-go/quicksand/internal/tree/tartest"
)

// Lies about trees: the answer to a download (GET /files/tar; the real
// one is guest-agent/trees.go), a tar stream made by hand. The argument of
// the lies that point at the host is a host path.
func init() {
	tree := func(entries func(args []string) []tt.Entry) lie {
		return lie{protocol.PathTreeRead, func(w http.ResponseWriter, _ *http.Request, args []string) {
			w.Header().Set("Content-Type", "application/x-tar")
			tt.Write(w, entries(args)...) // a write error: the host went away
		}}
	}
	// The attack: a symlink to a host folder, then a folder of
	// the same name, world-writable, time 0.
	lies["tree-symlink-dir"] = tree(func(a []string) []tt.Entry {
		return []tt.Entry{tt.Symlink("x", a[0]), tt.Dir("x", 0o777)}
	})
	// The same, and a setuid file in the folder.
	lies["tree-symlink-dir-file"] = tree(func(a []string) []tt.Entry {
		return []tt.Entry{tt.Symlink("x", a[0]), tt.Dir("x", 0o777), tt.File("x/planted", "planted\n", 0o4777)}
	})
	// A symlinked parent: a -> the host folder, then a/planted.
	lies["tree-symlink-parent"] = tree(func(a []string) []tt.Entry {
		return []tt.Entry{tt.Symlink("a", a[0]), tt.File("a/planted", "planted\n", 0o4777)}
	})
	// A hard link to a host file.
	lies["tree-hardlink"] = tree(func(a []string) []tt.Entry {
		return []tt.Entry{tt.Link("h", a[0])}
	})
	// A device node (the host's memory) and a fifo.
	lies["tree-devices"] = tree(func([]string) []tt.Entry {
		return []tt.Entry{tt.Node("mem", tar.TypeChar, 1, 1), tt.Node("fifo", tar.TypeFifo, 0, 0)}
	})
	// Setuid and setgid bits and owners, which the host must not keep.
	lies["tree-setuid"] = tree(func([]string) []tt.Entry {
		top, rootsh, shared, f := tt.Dir(".", 0o2775), tt.File("rootsh", "#!/bin/sh\nid\n", 0o4755), tt.Dir("shared", 0o3777), tt.File("shared/f", "x", 0o6755)
		rootsh.Uname = "root"
		shared.Uid, shared.Gid, f.Uid, f.Gid = 1234, 1234, 1234, 1234
		return []tt.Entry{top, rootsh, shared, f}
	})
	// A file that says it holds a terabyte, and ends after 1 MiB.
	lies["tree-huge"] = tree(func([]string) []tt.Entry {
		e := tt.File("huge", "", 0o644)
		e.Size, e.Stream = 1<<40, io.LimitReader(tt.Zeros{}, 1<<20)
		return []tt.Entry{e}
	})
	// A file without end: zeros for as long as the host reads.
	lies["tree-endless"] = tree(func([]string) []tt.Entry {
		e := tt.File("endless", "", 0o644)
		e.Size, e.Stream = 1<<62, tt.Zeros{}
		return []tt.Entry{e}
	})
}
