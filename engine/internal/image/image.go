// Package image finds guest images and reads their manifests.
//
// An image is a folder with a manifest.json naming its kernel, initrd, root
// disk, architecture and kernel arguments. A name ("debian") is looked up in
// the image folders; a path to a folder works too.
package image

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// PathEnv names extra image folders, separated by ':', searched first.
const PathEnv = "QUICKSAND_IMAGE_PATH"

// Manifest is the content of an image's manifest.json.
type Manifest struct {
	Name             string `json:"name"`
	Arch             string `json:"arch"`
	Kernel           string `json:"kernel"`
	KernelCompressed string `json:"kernel_compressed,omitempty"`
	Initrd           string `json:"initrd"`
	RootFS           string `json:"rootfs"`
	KernelArgs       string `json:"kernel_args"`
	KernelVersion    string `json:"kernel_version,omitempty"`
	BuildID          string `json:"build_id,omitempty"`
	// Agent says whose agent the image runs: "" for ours, AgentQuicksand
	// for Quicksand's (an imported Quicksand image, import.go).
	Agent string `json:"agent,omitempty"`
	// Source says where an installed image came from ("archive FILE" for
	// one installed from an archive); empty for one built here.
	Source string `json:"source,omitempty"`
	// Save is set when the folder is a saved sandbox rather than an image.
	Save *SaveInfo `json:"save,omitempty"`
	// CodePrestart names a code language whose default context the engine
	// starts before it takes a warm-start template ("python" for
	// debian-python), so that warm starts hand out a running kernel.
	CodePrestart string `json:"code_prestart,omitempty"`
	// Desktop: the image starts a desktop on the VM's display device
	// (debian-desktop); a sandbox with a display needs one.
	Desktop bool `json:"desktop,omitempty"`
	// DesktopReady is a guest command that exits 0 once the desktop is up:
	// the engine waits for it before it hands out a cold-booted sandbox
	// with a display, or takes a template of one.
	DesktopReady string `json:"desktop_ready,omitempty"`
}

// SaveInfo describes a saved sandbox (engine.Sandbox.Save): a paused VM's
// state, to resume rather than boot.
type SaveInfo struct {
	State       string `json:"state"`                 // migration stream, in the folder
	Disk        string `json:"disk"`                  // qcow2 over the image's root disk, in the folder
	StateSHA256 string `json:"state_sha256"`          // checked before resuming
	DiskSHA256  string `json:"disk_sha256,omitempty"` // likewise (saves made before it have none)
	Append      string `json:"append"`                // the kernel command line the VM booted with
	MemoryMiB   int    `json:"memory_mib"`
	CPUs        int    `json:"cpus"`
	Accel       string `json:"accel"`
	GuestPort   int    `json:"guest_port"`
	QEMUVersion string `json:"qemu_version"`
	Created     string `json:"created"`
	// Sealed: the agent forgot its token before the state was written, so
	// it takes its new one only from the resuming QEMU's fw_cfg (saves
	// made before sealing existed are rekeyed with their old token).
	Sealed bool `json:"sealed,omitempty"`
	// Display is the saved VM's screen, "WIDTHxHEIGHT" ("": none): its
	// devices are part of the state, so the resumed VM has them too.
	Display string `json:"display,omitempty"`
	// NoGuestAnnounce: the VM's virtio-net offered no guest announcements
	// (qemu.Spec.GuestAnnounce); a save made before that resumes with the
	// device offering them, as its state expects.
	NoGuestAnnounce bool `json:"no_guest_announce,omitempty"`
}

// AgentQuicksand marks an image whose guest runs Quicksand's own agent. It
// reads its token only from the kernel command line (which every local
// user can read: see docs/security.md), prints no ready line, and cannot be
// rekeyed, so such an image boots cold every time and cannot be saved.
const AgentQuicksand = "quicksand"

// archAliases are the other names manifests give the architectures
// (Quicksand's packages say amd64).
var archAliases = map[string]string{"x86_64": "x86_64", "amd64": "x86_64", "x64": "x86_64", "arm64": "arm64", "aarch64": "arm64"}

// Image is a resolved image: its folder and manifest, with file paths made
// absolute.
type Image struct {
	Dir      string
	Manifest Manifest
	// RootFormat is the root disk's format as the engine must name it to
	// QEMU: "qcow2" or "raw", never QEMU's guess (qcow2.go).
	RootFormat string
}

// KernelPath, InitrdPath and RootFSPath are the absolute paths of the files
// (an image names its own files; a save names its image's by path).
func (im *Image) KernelPath() string { return im.path(im.Manifest.Kernel) }

// File is the absolute path of a file the manifest names.
func (im *Image) File(name string) string { return im.path(name) }
func (im *Image) InitrdPath() string      { return im.path(im.Manifest.Initrd) }
func (im *Image) RootFSPath() string      { return im.path(im.Manifest.RootFS) }

func (im *Image) path(name string) string {
	if filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(im.Dir, name)
}

// NotFoundError says which image was asked for and where it was looked for.
type NotFoundError struct {
	Name     string
	Searched []string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("image %s not found (searched: %s; build one with `make image`, or set %s)",
		Quote(e.Name), strings.Join(e.Searched, ", "), PathEnv)
}

// SearchDirs lists the folders a name is looked up in: extra (from the
// config), then $QUICKSAND_IMAGE_PATH, then the default data folder.
func SearchDirs(extra []string) []string {
	dirs := append([]string{}, extra...)
	for _, d := range filepath.SplitList(os.Getenv(PathEnv)) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	return append(dirs, DefaultDir())
}

// DefaultDir is where `make image` installs images:
// $XDG_DATA_HOME/quicksand/images, or ~/.local/share/quicksand/images.
func DefaultDir() string {
	data := os.Getenv("XDG_DATA_HOME")
	if data == "" {
		home, _ := os.UserHomeDir()
		data = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(data, "quicksand", "images")
}

// HostArch is the host's architecture in image terms (x86_64, arm64).
func HostArch() string {
	if runtime.GOARCH == "amd64" {
		return "x86_64"
	}
	return runtime.GOARCH
}

// Resolve finds an image by path or by name (see Locate) and loads it.
func Resolve(nameOrPath string, dirs []string) (*Image, error) {
	dir, err := Locate(nameOrPath, dirs)
	if err != nil {
		return nil, err
	}
	im, err := Load(dir)
	if os.IsNotExist(err) {
		return nil, &NotFoundError{Name: nameOrPath, Searched: []string{dir}}
	}
	return im, err
}

// Locate finds the folder of an image or save by path or by name (see
// IsPath and CheckName), without checking what its manifest says: a name
// is tried as a folder "<name>" and then "<name>-<host arch>" in each
// search folder, and the first that holds a manifest.json is taken.
func Locate(nameOrPath string, dirs []string) (string, error) {
	if nameOrPath == "" {
		return "", fmt.Errorf("no image given")
	}
	cands, searched := []string{nameOrPath}, []string{nameOrPath}
	if !IsPath(nameOrPath) {
		if err := CheckName(nameOrPath); err != nil {
			return "", err
		}
		cands, searched = nil, dirs
		for _, d := range dirs {
			cands = append(cands, filepath.Join(d, nameOrPath), filepath.Join(d, nameOrPath+"-"+HostArch()))
		}
	}
	for _, c := range cands {
		if _, err := os.Lstat(filepath.Join(c, "manifest.json")); !os.IsNotExist(err) {
			return filepath.Abs(c)
		}
	}
	return "", &NotFoundError{Name: nameOrPath, Searched: searched}
}

// ReadManifest reads the manifest in dir as it is, checking nothing it
// says (Load checks it): for deciding what to do with a folder whose
// image is refused.
func ReadManifest(dir string) (Manifest, error) {
	var m Manifest
	raw, err := readManifest(dir)
	if err == nil {
		err = json.Unmarshal(raw, &m)
	}
	return m, err
}

// Load reads the image (or save) in dir and checks the files it names:
// its own regular files only (files.go), a root disk that names no other
// file (qcow2.go). A missing manifest gives an error for which
// os.IsNotExist is true.
func Load(dir string) (*Image, error) { return load(dir, true) }

// load is Load; a save is taken only when saves says so (a save's image
// must be an image, not another save).
func load(dir string, saves bool) (*Image, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	raw, err := readManifest(abs)
	if os.IsNotExist(err) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", abs, err)
	}
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("image %s: manifest.json: %w", abs, err)
	}
	arch, ok := archAliases[m.Arch]
	if !ok {
		return nil, fmt.Errorf("image %s: unknown arch %q (x86_64 or arm64)", abs, m.Arch)
	}
	m.Arch = arch
	if m.Agent != "" && m.Agent != AgentQuicksand {
		return nil, fmt.Errorf("image %s: unknown agent %q (none for ours, or %q)", abs, m.Agent, AgentQuicksand)
	}
	im := &Image{Dir: abs, Manifest: m}
	switch {
	case m.Save == nil:
		im.RootFormat, err = checkImageFiles(im)
	case saves:
		im.RootFormat, err = checkSaveFiles(im)
	default:
		err = fmt.Errorf("is a save, not an image")
	}
	if err != nil {
		return nil, fmt.Errorf("image %s: manifest.json: %w%s", abs, err, reimportHint(m))
	}
	return im, nil
}

// reimportHint tells what to do with an image imported from Quicksand
// before imports copied their files (its manifest names them where they
// were).
func reimportHint(m Manifest) string {
	if m.Agent == AgentQuicksand && filepath.IsAbs(m.RootFS) {
		return " (an image imported from Quicksand before its files were copied: import it again with `quicksand image import`)"
	}
	return ""
}

// errorsNoNotExist keeps a missing file named in a manifest from looking
// like a missing image to callers that test os.IsNotExist.
func errorsNoNotExist(err error) error { return fmt.Errorf("%s", err.Error()) }
