package engine

import (
	"github.com/quicksand-go/quicksand/engine/internal/image"
)

// Image is an image or a save as found by name or folder: where it is and
// what its manifest says, with file paths made absolute.
type Image struct {
	Dir        string
	Name       string
	Arch       string // x86_64 or arm64
	Kernel     string
	Initrd     string
	RootFS     string
	KernelArgs string
	// KernelCompressed is the compressed kernel, when the image has one.
	KernelCompressed string
	// QuicksandAgent: the image runs Quicksand's own agent (imported with
	// ImportQuicksandImage), with what that means (docs/protocol.md).
	QuicksandAgent bool
	// Save is set when the folder is a saved sandbox (Sandbox.Save).
	Save *SaveInfo
}

// SaveInfo describes a saved sandbox: what it was started with.
type SaveInfo struct {
	MemoryMiB   int
	CPUs        int
	Accel       string
	QEMUVersion string
	Created     string // RFC 3339
}

// FindImage finds an image or save as Start would: a name in dirs, then
// $QUICKSAND_IMAGE_PATH, then DefaultImageDir(); or a folder.
func FindImage(nameOrPath string, dirs ...string) (*Image, error) {
	img, err := image.Resolve(nameOrPath, image.SearchDirs(dirs))
	if err != nil {
		return nil, newError(KindImageNotFound, err, "resolving image %q", nameOrPath)
	}
	m := img.Manifest
	out := &Image{
		Dir: img.Dir, Name: m.Name, Arch: m.Arch,
		Kernel: img.KernelPath(), Initrd: img.InitrdPath(), RootFS: img.RootFSPath(),
		KernelArgs: m.KernelArgs, QuicksandAgent: m.Agent == image.AgentQuicksand,
		Save: newSaveInfo(img),
	}
	if m.KernelCompressed != "" {
		out.KernelCompressed = img.File(m.KernelCompressed)
	}
	return out, nil
}

func newSaveInfo(img *image.Image) *SaveInfo {
	s := img.Manifest.Save
	if s == nil {
		return nil
	}
	return &SaveInfo{MemoryMiB: s.MemoryMiB, CPUs: s.CPUs, Accel: s.Accel, QEMUVersion: s.QEMUVersion, Created: s.Created}
}

// DefaultImageDir is where `make image` installs images and where names
// are looked up last: $XDG_DATA_HOME/quicksand/images, or
// ~/.local/share/quicksand/images.
func DefaultImageDir() string { return image.DefaultDir() }

// HostArch is this machine's architecture as images name it.
func HostArch() string { return image.HostArch() }

// ImportQuicksandImage makes an image of ours of each image in an installed
// Quicksand image package (its folder, or its images/ folder), in destDir
// as name-<arch> (name "": the distribution's), and returns their folders.
// Their files are copied into those folders: an image names only its own
// files. A package whose files are links, or whose disk names another
// file, is refused.
func ImportQuicksandImage(src, destDir, name string) ([]string, error) {
	made, err := image.ImportQuicksand(src, destDir, name)
	if err != nil {
		return made, newError(KindImageNotFound, err, "importing the Quicksand image %s", src)
	}
	return made, nil
}
