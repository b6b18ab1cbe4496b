#!/usr/bin/env bash
# make deps: checks everything the project needs and installs what is
# missing, or stops with one line saying what to install.
#
#   build/deps.sh OUT_DIR
#
# - Debian packages (QEMU, image tools, compilers), with apt-get.
# - Go at the version go.mod names: the go on PATH if new enough, else that
#   toolchain as the Go module proxy publishes it (module
#   golang.org/toolchain), fetched with whatever go there is (Debian's
#   golang-go if none) into OUT_DIR/go.
# - Python 3.9 or newer with venv: a project venv in OUT_DIR/venv with the
#   binding (editable) and its pinned test dependencies; with Python 3.11
#   or newer, Quicksand's published client in OUT_DIR/interop-venv for the
#   interoperability tests. Nothing goes into the machine's or the user's
#   Python.
# - Node 18 or newer with npm: the binding's dependencies in
#   bindings/node/node_modules.
set -euo pipefail
out=${1:?output folder}
cd "$(dirname "$0")/.."
mkdir -p "$out"
out=$(cd "$out" && pwd)
# A go.mod makes the output folder a module of its own, which `go test
# ./...` then leaves out: it holds a fetched Go toolchain's sources, and
# guest root file systems while images are built.
[ -f "$out/go.mod" ] || printf 'module quicksand.invalid/build-output\n' >"$out/go.mod"

say() { printf '==> %s\n' "$*"; }
die() { printf 'deps: %s\n' "$*" >&2; exit 1; }

apt_packages=(qemu-system-x86 qemu-system-arm qemu-utils busybox-static debootstrap
	e2fsprogs cpio xz-utils qemu-user-static binfmt-support gcc g++ make pkg-config valgrind
	iproute2 curl ca-certificates tmux mmdebstrap uidmap fakeroot)
# A C cross compiler for the other architecture's library (make lib-cross),
# and C++ for the Node FFI addons prebuilt for it (build/node-addons.sh).
case $(uname -m) in
aarch64) apt_packages+=(gcc-x86-64-linux-gnu g++-x86-64-linux-gnu libc6-dev-amd64-cross) ;;
*) apt_packages+=(gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross) ;;
esac
apt_updated=false
apt_install() {
	command -v apt-get >/dev/null || die "no apt-get: install $* by hand (the image build needs a Debian host)"
	[ "$(id -u)" = 0 ] || die "missing packages: $*; run 'sudo make deps' or install them"
	if ! $apt_updated; then
		apt-get update -q >/dev/null
		apt_updated=true
	fi
	say "installing: $*"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

# --- Debian packages ------------------------------------------------------------
missing=()
for p in "${apt_packages[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# The arm64 architecture lets `apt-get download` fetch the arm64 guest kernel.
if command -v dpkg >/dev/null && ! dpkg --print-foreign-architectures | grep -qx arm64; then
	[ "$(id -u)" = 0 ] || die "apt lacks the arm64 architecture; run 'sudo make deps'"
	dpkg --add-architecture arm64
	apt_updated=false
fi
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

# version_ge A B: whether version A >= B (dotted numbers).
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

# --- Go -----------------------------------------------------------------------------
need_go=$(sed -n 's/^go //p' go.mod)
go_version() { "$1" env GOVERSION 2>/dev/null | sed 's/^go//'; }
have_go=""
for g in "$out/go/bin/go" "$(command -v go || true)"; do
	if [ -n "$g" ] && [ -x "$g" ] && version_ge "$(GOTOOLCHAIN=local go_version "$g")" "$need_go"; then
		have_go=$g
		break
	fi
done
if [ -z "$have_go" ]; then
	bootstrap=$(command -v go || true)
	if [ -z "$bootstrap" ]; then
		apt_install golang-go
		bootstrap=$(command -v go)
	fi
	case "$(uname -m)" in
	x86_64) goarch=amd64 ;;
	aarch64) goarch=arm64 ;;
	*) die "no Go toolchain for $(uname -m): install Go $need_go" ;;
	esac
	module="golang.org/toolchain@v0.0.1-go$need_go.linux-$goarch"
	say "fetching Go $need_go ($module) with $($bootstrap version)"
	cache="$out/go-modcache"
	# Outside this module: an older go would refuse our go.mod.
	(cd / && GOTOOLCHAIN=local GOFLAGS=-modcacherw GOMODCACHE="$cache" "$bootstrap" mod download "$module") ||
		die "could not fetch Go $need_go; install it from your distribution or the Go project"
	dir="$cache/golang.org/toolchain@v0.0.1-go$need_go.linux-$goarch"
	# A module keeps no file modes: its programs are made executable here,
	# as the go command does when it switches toolchains itself.
	chmod +x "$dir"/bin/* "$dir"/pkg/tool/*/*
	ln -sfn "$dir" "$out/go"
	have_go="$out/go/bin/go"
	version_ge "$(GOTOOLCHAIN=local go_version "$have_go")" "$need_go" || die "the fetched Go does not run"
fi

# --- Python ---------------------------------------------------------------------------
python=$(command -v python3 || true)
[ -n "$python" ] || { apt_install python3 python3-venv; python=$(command -v python3); }
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
version_ge "$pyver" 3.9 || die "Python $pyver is too old: install Python 3.9 or newer"
"$python" -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
venv="$out/venv"
stamp="$venv/.installed"
if [ ! -x "$venv/bin/python" ] || [ ! "$stamp" -nt bindings/python/pyproject.toml ] || [ ! "$stamp" -nt bindings/python/constraints.txt ]; then
	say "making the project's Python venv ($venv)"
	rm -rf "$venv"
	"$python" -m venv "$venv"
	"$venv/bin/python" -m pip install -q --disable-pip-version-check -c bindings/python/constraints.txt -e 'bindings/python[test,ray]' setuptools
	touch "$stamp"
fi

# Quicksand's published client, for the interoperability tests, in a venv
# of its own: it needs Python 3.11 and pulls in packages the binding has no
# use for.
interop="$out/interop-venv"
if [ ! -x "$interop/bin/python" ] || [ ! "$interop/.installed" -nt build/interop-requirements.txt ]; then
	version_ge "$pyver" 3.11 || die "Python $pyver is too old for Quicksand's client (the interoperability tests): install Python 3.11 or newer"
	say "making the venv of Quicksand's client ($interop)"
	rm -rf "$interop"
	"$python" -m venv "$interop"
	"$interop/bin/python" -m pip install -q --disable-pip-version-check -r build/interop-requirements.txt
	touch "$interop/.installed"
fi

# --- Node -----------------------------------------------------------------------------
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
nodever=$(node -p 'process.versions.node')
version_ge "$nodever" 18 || die "Node $nodever is too old: install Node 18 or newer"
# ffi-napi compiles against this Node's headers; node-gyp would otherwise
# download them, which needs the network beyond the npm registry.
node_prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
if [ ! -f "$node_prefix/include/node/node_api.h" ]; then
	apt_install libnode-dev
	[ -f "$node_prefix/include/node/node_api.h" ] || die "no headers for Node $nodever in $node_prefix/include/node: install them (Debian: libnode-dev)"
fi
if [ ! -d bindings/node/node_modules/@2060.io/ffi-napi ] || [ bindings/node/package-lock.json -nt bindings/node/node_modules ]; then
	say "installing the Node binding's dependencies"
	(cd bindings/node && npm_config_nodedir="$node_prefix" npm ci --no-audit --no-fund --loglevel=error)
	touch bindings/node/node_modules
fi

say "deps ready: Go $(GOTOOLCHAIN=local go_version "$have_go") ($have_go), Python $pyver ($venv), Node $nodever, QEMU $(qemu-system-x86_64 --version | sed -n '1s/.*version \([^ ]*\).*/\1/p')"
