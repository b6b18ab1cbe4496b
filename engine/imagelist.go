package engine

// The images and saves in the search folders, and removing one.

import (
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"github.com/quicksand-go/quicksand/engine/internal/image"
)

// ImageEntry is one image or save found by ListImages.
type ImageEntry struct {
	Name string // its folder's name: what Start takes as Image
	Dir  string
	Arch string
	// Bytes is the space its files take on disk (a sparse root disk counts
	// what it holds, not its length).
	Bytes int64
	// Source: "built" (here, by make image), "archive FILE" (InstallImage),
	// "quicksand import" (ImportQuicksandImage), or "save".
	Source string
}

// ListImages lists the images and saves in dirs, then $QUICKSAND_IMAGE_PATH,
// then DefaultImageDir(): the folders Start looks in, in its order. A name
// found twice is listed twice; Start takes the first.
func ListImages(dirs ...string) []ImageEntry {
	var out []ImageEntry
	for _, d := range image.SearchDirs(dirs) {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
		for _, e := range entries {
			img, err := image.Load(filepath.Join(d, e.Name()))
			if err != nil {
				continue
			}
			m := img.Manifest
			source := m.Source
			switch {
			case m.Save != nil:
				source = "save"
			case m.Agent == image.AgentQuicksand:
				source = "quicksand import"
			case source == "":
				source = "built"
			}
			out = append(out, ImageEntry{Name: e.Name(), Dir: img.Dir, Arch: m.Arch, Bytes: diskUsage(img), Source: source})
		}
	}
	return out
}

// diskUsage adds up the blocks of the folder's files and of the files its
// manifest names elsewhere (a save's image's). A link is counted as a
// link: nothing in the folder is followed out of it.
func diskUsage(img *image.Image) int64 {
	seen := map[string]bool{}
	var total int64
	add := func(p string) {
		var st syscall.Stat_t
		if seen[p] || syscall.Lstat(p, &st) != nil {
			return
		}
		seen[p] = true
		total += st.Blocks * 512
	}
	entries, _ := os.ReadDir(img.Dir)
	for _, e := range entries {
		add(filepath.Join(img.Dir, e.Name()))
	}
	m := img.Manifest
	for _, f := range []string{m.Kernel, m.KernelCompressed, m.Initrd, m.RootFS} {
		if f != "" {
			add(img.File(f))
		}
	}
	return total
}

// RemoveImage removes the image folder name (as ListImages names it, or a
// name without its architecture: this machine's) from dir ("" means
// DefaultImageDir()). Saves are not removed this way: they are the user's
// work, and go only when their folder is deleted by hand.
func RemoveImage(name, dir string) (string, error) {
	if dir == "" {
		dir = DefaultImageDir()
	}
	if err := image.CheckName(name); err != nil {
		return "", newError(KindBadRequest, err, "removing an image")
	}
	// Located, not loaded: an image that Load refuses (one a hostile
	// archive installed before installs checked what manifests name, one
	// imported before imports copied their files) must still go.
	found, err := image.Locate(name, []string{dir})
	if err != nil {
		return "", newError(KindImageNotFound, err, "removing image %q", name)
	}
	m, err := image.ReadManifest(found)
	if err != nil {
		return "", newError(KindBadRequest, err, "removing %s: its manifest cannot be read: delete the folder yourself if you mean to", found)
	}
	if m.Save != nil {
		return "", newError(KindBadRequest, nil, "%s is a save: delete its folder yourself if you mean to", found)
	}
	if err := os.RemoveAll(found); err != nil {
		return "", newError(KindBadRequest, err, "removing %s", found)
	}
	return found, nil
}
