#!/usr/bin/env bash
# The native addons of the Node binding's FFI (@2060.io/ffi-napi and
# @2060.io/ref-napi), prebuilt for linux-x64 and linux-arm64 so that
# `npm install` of our package compiles nothing on those platforms.
#
#   build/node-addons.sh NODE_MODULES OUT
#
# NODE_MODULES: the binding's installed dependencies (make deps), whose
# sources (and the header packages their binding.gyp names) are built here
# in a copy. OUT gets, for each package, the folder its loader looks in:
#   OUT/@2060.io/ffi-napi/prebuilds/linux-ARCH/node.napi.glibc.node
#   OUT/@2060.io/ref-napi/prebuilds/linux-ARCH/node.napi.glibc.node
# node-gyp-build (both packages' loader and install script) takes such a
# file for any Node with N-API ("napi"), and only on glibc ("glibc": on
# musl it compiles instead). The machine's architecture is built with its
# compiler, the other with the cross compiler of make deps; both against
# the headers of the installed Node (PREFIX/include/node, as make deps
# checks), never downloaded. node-gyp is npm's own. Each file is then
# checked by build/check-node-addon.sh.
set -euo pipefail
modules=$(realpath "$1")
out=$(realpath -m "$2")
root=$(cd "$(dirname "$0")/.." && pwd)
node_prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
[ -f "$node_prefix/include/node/node_api.h" ] || { echo "node-addons: no Node headers in $node_prefix/include/node (make deps)" >&2; exit 1; }
node_gyp=$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js
[ -f "$node_gyp" ] || { echo "node-addons: npm's node-gyp not found at $node_gyp" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$out"

# build ARCH(x64|arm64) CROSS_PREFIX
build() {
	local arch=$1 cross=$2 pkg
	rm -rf "$work/node_modules"
	cp -r "$modules" "$work/node_modules"
	for pkg in @2060.io/ref-napi @2060.io/ffi-napi; do
		local dir=$work/node_modules/$pkg
		rm -rf "$dir/build" "$dir/prebuilds"
		echo "==> $pkg for linux-$arch"
		(cd "$dir" && CC=${cross}gcc CXX=${cross}g++ LINK=${cross}g++ AR=${cross}ar \
			node "$node_gyp" rebuild --arch="$arch" --nodedir="$node_prefix" --loglevel=error >"$work/gyp.log" 2>&1) ||
			{ tail -30 "$work/gyp.log" >&2; echo "node-addons: $pkg did not build for $arch" >&2; exit 1; }
		local built
		built=$(find "$dir/build/Release" -maxdepth 1 -name '*.node')
		mkdir -p "$out/$pkg/prebuilds/linux-$arch"
		install -m 0755 "$built" "$out/$pkg/prebuilds/linux-$arch/node.napi.glibc.node"
		"$root/build/check-node-addon.sh" "$out/$pkg/prebuilds/linux-$arch/node.napi.glibc.node" "$arch"
	done
}

case $(uname -m) in
x86_64) build x64 "" && build arm64 aarch64-linux-gnu- ;;
aarch64) build arm64 "" && build x64 x86_64-linux-gnu- ;;
*) echo "node-addons: no prebuilt addons for $(uname -m)" >&2; exit 1 ;;
esac
