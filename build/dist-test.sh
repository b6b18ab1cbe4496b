#!/usr/bin/env bash
# make test-dist: the artifacts of `make dist` used as a user gets them. As a
# fresh user who is not root (created here), with nothing of the repository
# on its paths: a new venv and `pip install` of the wheel, a new folder and
# `npm install` of the tarball, a C program built against the unpacked C
# tarball with pkg-config, and a Go program in a module of its own outside
# the repository. The guest image comes from the image archive, installed
# with the CLI from the C tarball. Each runs `uname -m` in a guest and
# checks the answer. Node's user has no compiler, make or Python on its
# PATH and no npm_config_nodedir: `npm install` must compile nothing, and
# the image comes from its npm package. Run as root (it creates the user).
# Usage: build/dist-test.sh OUT GO
set -euo pipefail

out=$(realpath "$1")
go_bin=$(realpath "$(command -v "$2")")
root=$(cd "$(dirname "$0")/.." && pwd)
user=qs-dist-test
[ "$(id -u)" = 0 ] || { echo "dist-test: run as root (it creates the user $user)" >&2; exit 1; }
id -u "$user" >/dev/null 2>&1 || useradd --system --no-create-home --shell /bin/sh "$user"

arch=$(uname -m)
guest_arch=$arch
[ "$arch" = aarch64 ] && guest_arch=arm64

work=$(mktemp -d /tmp/qs-dist-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"
mkdir -p "$work/home" "$work/images" "$work/dist" "$work/src"
# The user reads nothing of the repository: the artifacts and the Go
# module's source are copied to where it can.
cp "$out"/dist/* "$work/dist/"
tar -C "$root" --exclude=./out --exclude=node_modules --exclude=.git -cf - . | tar -C "$work/src" -xf -
chown -R "$user": "$work"

# What the user's session has: a plain PATH (none of root's own tools), the
# machine's registry and certificate settings, and the test run's marker
# (Makefile, test-leaks: how a VM of this run is told from others).
passthrough=()
while IFS= read -r line; do passthrough+=("$line"); done < <(env | grep -E '^(QUICKSAND_TEST_RUN|PIP_[A-Z_]*|npm_config_[a-z_]*|NODE_EXTRA_CA_CERTS|SSL_CERT_[A-Z]*|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE|GOPROXY|GONOSUMDB|GOSUMDB|GOPRIVATE|https?_proxy|HTTPS?_PROXY|no_proxy|NO_PROXY)=' || true)

as_user() {
	runuser -u "$user" -- env -i HOME="$work/home" LANG=C.UTF-8 \
		PATH="$(dirname "$go_bin"):/usr/local/bin:/usr/bin:/bin" \
		GOPATH="$work/home/go" GOCACHE="$work/home/go-cache" GOFLAGS=-buildvcs=false \
		npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false \
		QUICKSAND_IMAGE_PATH="$work/images" "${passthrough[@]}" \
		bash -euo pipefail -c "cd '$work' && $1"
}

check() { # check LANGUAGE OUTPUT [ARCH]: the guest's `uname -m`, ARCH (the host's) by default
	local got want=${3:-$arch}
	got=$(printf '%s\n' "$2" | tail -1)
	if [ "$got" != "$want" ]; then
		echo "FAIL dist-test: $1 printed '$got', want the guest's architecture ($want)" >&2
		exit 1
	fi
	echo "ok   dist-test: $1 (as $user): the guest said $got"
}

echo "==> the C tarball unpacked anywhere; its CLI installs the image archive"
as_user "mkdir c && tar -C c -xzf dist/quicksand-go-*-linux-$arch.tar.gz && (cd dist && sha256sum -c --quiet debian-*.qsimage.sha256) && c/*/bin/quicksand image install -dir images dist/debian-$guest_arch-*.qsimage >/dev/null && c/*/bin/quicksand image list" | tee "$work/list.txt"
grep -q "^debian-$guest_arch .*archive debian-$guest_arch-" "$work/list.txt" || { echo "FAIL dist-test: the installed image is not listed as from the archive" >&2; exit 1; }
echo "ok   dist-test: the image archive installed (as $user)"

echo "==> Python: a new venv, pip install of the two wheels (the binding, the image)"
as_user "python3 -m venv venv"
began=$(date +%s.%N) # the figure: from pip install to the first command's output, nothing cached
as_user "venv/bin/pip install -q --disable-pip-version-check dist/quicksand_go-*_$arch.whl dist/quicksand_go_debian-*_$arch.whl"
# Without QUICKSAND_IMAGE_PATH: the image must come from its package.
py_out=$(as_user "env -u QUICKSAND_IMAGE_PATH venv/bin/python -c 'from quicksand import SyncSandbox
with SyncSandbox() as sb:
    print(sb.execute(\"uname -m\").stdout.strip())' 2>py.err")
check Python "$py_out"
echo "     from pip install to the first command's output (a template built on the way): $(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $began }") s"
# This user may not open /dev/kvm (root's, mode 0600 here): it must hear so.
if [ -e /dev/kvm ] && ! runuser -u "$user" -- test -r /dev/kvm -a -w /dev/kvm; then
	grep -q "/dev/kvm exists but this user cannot open it" "$work/py.err" || {
		echo "FAIL dist-test: no warning that /dev/kvm cannot be opened; stderr was:" >&2
		cat "$work/py.err" >&2
		exit 1
	}
	echo "ok   dist-test: Python (as $user): warned that /dev/kvm exists but cannot be opened"
elif [ ! -e /dev/kvm ]; then
	echo "not checked: the warning that /dev/kvm cannot be opened: this machine has no /dev/kvm"
else
	echo "not checked: the warning that /dev/kvm cannot be opened: $user can open it here"
fi

echo "==> Node: npm install of the tarball and the image package in a new folder, nothing to compile with"
# A PATH of node, npm, npx, QEMU and a shell with a few tools (npm runs
# scripts with sh): no compiler, make or Python, so a compile attempted by
# `npm install` (node-gyp) fails the test.
nodebin=$work/node-bin
mkdir -p "$nodebin"
for t in node npm npx qemu-system-x86_64 qemu-system-aarch64 qemu-img sh bash env cat ls mkdir rm; do
	ln -s "$(realpath "$(command -v "$t")")" "$nodebin/$t"
done
as_node_user() {
	runuser -u "$user" -- env -i HOME="$work/home" LANG=C.UTF-8 PATH="$nodebin" \
		npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false \
		"${passthrough[@]}" /bin/bash -euo pipefail -c "cd '$work' && $1"
}
as_node_user "for t in cc gcc g++ c++ make python3 python; do ! command -v \$t >/dev/null || { echo \"dist-test: \$t on the Node user's PATH\" >&2; exit 1; }; done"
node_arch=x64
[ "$arch" = aarch64 ] && node_arch=arm64
began=$(date +%s.%N) # the figure: from npm install to the first command's output
as_node_user "/bin/mkdir node && cd node && npm init -y >/dev/null && npm install --no-audit --no-fund --loglevel=error ../dist/quicksand-[0-9]*.tgz ../dist/quicksand-go-debian-$node_arch-*.tgz >/dev/null"
# The addons came prebuilt: nothing was compiled (no build/ folder).
for pkg in ffi-napi ref-napi; do
	[ ! -e "$work/node/node_modules/@2060.io/$pkg/build" ] || { echo "FAIL dist-test: npm install compiled @2060.io/$pkg (its build/ exists)" >&2; exit 1; }
done
# Without QUICKSAND_IMAGE_PATH: the image must come from its package.
node_out=$(as_node_user "cd node && node -e '
const { Sandbox } = require(\"quicksand\");
(async () => {
  const sb = await Sandbox.start();
  try { console.log((await sb.execute(\"uname -m\")).stdout.trim()); } finally { await sb.stop(); }
})().catch((e) => { console.error(e); process.exit(1); });'")
check Node "$node_out"
echo "     from npm install to the first command's output (a template built on the way): $(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $began }") s"
as_node_user "cd node && npx quicksand image list" | tee "$work/npx-list.txt"
grep -q "^debian-$guest_arch .*package quicksand-go-debian-$node_arch .*node_modules/quicksand-go-debian-$node_arch/images/debian-$guest_arch\$" "$work/npx-list.txt" ||
	{ echo "FAIL dist-test: npx quicksand image list does not show the image of the npm package" >&2; exit 1; }
echo "ok   dist-test: npx quicksand image list (as $user) shows the image of the npm package"
as_node_user "cd node && npx quicksand image install --dir ../npx-images ../dist/debian-$guest_arch-*.qsimage >/dev/null && npx quicksand image remove --dir ../npx-images debian-$guest_arch >/dev/null && [ ! -e ../npx-images/debian-$guest_arch ]"
echo "ok   dist-test: npx quicksand image install and remove (as $user)"

echo "==> C: a program built with pkg-config against the unpacked tarball"
cat > "$work/main.c" <<'EOF'
#include <stdio.h>
#include <string.h>
#include "quicksand.h"
/* Prints the guest's `uname -m`: the result is msgpack; find "stdout". */
int main(void) {
    qs_sandbox *sb;
    qs_error *err;
    if (qs_sandbox_start(NULL, 0, &sb, &err) != QS_OK) { fprintf(stderr, "%s\n", qs_error_message(err)); return 1; }
    static const unsigned char req[] = {0x81, 0xa7, 'c', 'o', 'm', 'm', 'a', 'n', 'd', 0xa8, 'u', 'n', 'a', 'm', 'e', ' ', '-', 'm'};
    qs_buffer res;
    if (qs_sandbox_execute(sb, req, sizeof req, NULL, NULL, &res, &err) != QS_OK) { fprintf(stderr, "%s\n", qs_error_message(err)); return 1; }
    for (size_t i = 0; i + 8 < res.len; i++) {
        if (memcmp(res.data + i, "\xa6stdout", 7) == 0) {
            const unsigned char *v = res.data + i + 7; /* bin 8 (0xc4) or str: a short value */
            size_t n = v[0] == 0xc4 || v[0] == 0xd9 ? v[1] : (size_t)(v[0] & 0x1f);
            const unsigned char *p = v[0] == 0xc4 || v[0] == 0xd9 ? v + 2 : v + 1;
            printf("%.*s", (int)n, (const char *)p);
        }
    }
    qs_buffer_free(&res);
    qs_sandbox_free(sb);
    return 0;
}
EOF
chown "$user": "$work/main.c"
c_out=$(as_user "export PKG_CONFIG_PATH=\$(echo \$PWD/c/*/lib/pkgconfig) && cc main.c -o main \$(pkg-config --cflags --libs quicksand) && ./main")
check C "$c_out"

echo "==> Go: a program in a module of its own, the engine by go get (replaced by the checkout's copy)"
mkdir -p "$work/goprog"
cat > "$work/goprog/main.go" <<'EOF'
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/quicksand-go/quicksand/engine"
)

func main() {
	ctx := context.Background()
	sb, err := engine.Start(ctx, engine.Config{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer sb.Stop(ctx)
	command := os.Getenv("PROBE") // what to run, `uname -m` unless said
	if command == "" {
		command = "uname -m"
	}
	res, err := sb.Execute(ctx, engine.ExecRequest{Command: command})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(strings.TrimSpace(string(res.Stdout)))
}
EOF
cat > "$work/go.sh" <<EOF
cd goprog
if [ ! -f go.mod ]; then
	go mod init example.com/goprog 2>/dev/null
	go mod edit -replace github.com/quicksand-go/quicksand=$work/src
	go get github.com/quicksand-go/quicksand@v0.0.0 2>go-get.log && go mod tidy 2>>go-get.log || { cat go-get.log >&2; exit 1; }
fi
go run .
EOF
chown -R "$user": "$work/goprog" "$work/go.sh"
go_out=$(as_user "bash -euo pipefail go.sh")
check Go "$go_out"

# --- building the image without root ---------------------------------------------
# The same user builds the host's image from its copy of the sources with
# the tarball's CLI (`quicksand image build`, which runs build/image.sh):
# mmdebstrap in a user namespace and fakeroot instead of debootstrap. It needs subordinate ids, which Debian's adduser gives
# every new user; this system user gets them here. Then a guest of that
# image must see root's files as root's.
echo "==> an image built by this user, without root"
grep -q "^$user:" /etc/subuid || usermod --add-subuids 300000-365535 --add-subgids 300000-365535 "$user"
began=$(date +%s.%N)
as_user "PATH=\$PATH:/usr/sbin:/sbin c/*/bin/quicksand image build --source src --dir built-images >build.log 2>&1 || { tail -20 build.log >&2; exit 1; }"
echo "     built in $(awk "BEGIN { printf \"%.0f\", $(date +%s.%N) - $began }") s"
probe='stat -c "%U:%G %a %n" /usr/bin/passwd /etc/shadow /tmp; cat /etc/hostname; uname -m'
built_out=$(as_user "PROBE='$probe' QUICKSAND_IMAGE_PATH=\$PWD/built-images bash -euo pipefail go.sh")
want="root:root 4755 /usr/bin/passwd
root:shadow 640 /etc/shadow
root:root 1777 /tmp
quicksand"
[ "$(printf '%s\n' "$built_out" | head -4)" = "$want" ] || { echo "FAIL dist-test: the image built without root shows, for owners, modes and hostname:" >&2; printf '%s\n' "$built_out" >&2; exit 1; }
check "an image built without root" "$built_out"

# --- the other architecture's artifacts (cross-built: aarch64 here) ---------------
# Run the way a user of that architecture would, with the program and the
# library emulated by qemu-user (binfmt_misc, set up for the arm64 image
# build) and QEMU itself native: a C program built by the cross compiler
# against that tarball, the default image of that architecture installed
# by that tarball's own CLI. The wheel and the npm tarball carry the same
# library, checked by what their files say they are.
cross_arch=aarch64 cross_guest=arm64 cross_cc=aarch64-linux-gnu-gcc
[ "$arch" = aarch64 ] && cross_arch=x86_64 cross_guest=x86_64 cross_cc=x86_64-linux-gnu-gcc
if ls "$work"/dist/quicksand-go-*-linux-$cross_arch.tar.gz >/dev/null 2>&1; then
	echo "==> $cross_arch: the wheel and the npm tarball carry that library"
	"$root/out/venv/bin/python" - "$work/dist" "$cross_arch" <<'PYEOF'
import glob, re, subprocess, sys, tarfile, tempfile, zipfile, os
dist, cross = sys.argv[1], sys.argv[2]
machine = {"x86_64": "X86-64", "aarch64": "AArch64"}
def check(data, what, want_arch, tag_glibc=None):
    with tempfile.NamedTemporaryFile() as f:
        f.write(data); f.flush()
        head = subprocess.run(["readelf", "-h", f.name], capture_output=True, text=True, check=True).stdout
        syms = subprocess.run(["readelf", "-W", "--dyn-syms", f.name], capture_output=True, text=True, check=True).stdout
    if machine[want_arch] not in head:
        sys.exit(f"FAIL dist-test: {what} is not an {want_arch} library")
    need = max((tuple(map(int, v.split("."))) for v in re.findall(r"GLIBC_([0-9.]+)", syms)), default=(0,))
    if tag_glibc and need > tag_glibc:
        sys.exit(f"FAIL dist-test: {what} needs glibc {need}, newer than its tag {tag_glibc}")
    print(f"ok   dist-test: {what}: {want_arch}, needs glibc {'.'.join(map(str, need))}")
for whl in glob.glob(f"{dist}/quicksand_go-*-manylinux_*_{cross}.whl"):
    m = re.search(r"manylinux_(\d+)_(\d+)_", whl)
    with zipfile.ZipFile(whl) as z:
        check(z.read("quicksand/libquicksand.so"), os.path.basename(whl), cross, (int(m[1]), int(m[2])))
    break
else:
    sys.exit(f"FAIL dist-test: no {cross} wheel")
with tarfile.open(glob.glob(f"{dist}/quicksand-[0-9]*.tgz")[0]) as t:
    for node_arch, a in (("x64", "x86_64"), ("arm64", "aarch64")):
        check(t.extractfile(f"package/prebuilds/linux-{node_arch}/libquicksand.so").read(), f"npm prebuilds/linux-{node_arch}", a)
PYEOF
	echo "==> the npm tarball's prebuilt FFI addons: architecture, N-API, glibc (no newer than the library's)"
	mkdir "$work/npm-unpacked"
	tar -C "$work/npm-unpacked" -xzf "$(ls "$work"/dist/quicksand-[0-9]*.tgz)"
	for node_arch in x64 arm64; do
		lib=$work/npm-unpacked/package/prebuilds/linux-$node_arch/libquicksand.so
		glibc=$(readelf -W --dyn-syms "$lib" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
		for pkg in ffi-napi ref-napi; do
			"$root/build/check-node-addon.sh" "$work/npm-unpacked/package/node_modules/@2060.io/$pkg/prebuilds/linux-$node_arch/node.napi.glibc.node" "$node_arch" "$glibc"
		done
	done
	echo "==> $cross_arch: a C program and the CLI of that tarball, under qemu-user"
	ls "$work"/dist/debian-$cross_guest-*.qsimage >/dev/null 2>&1 || { echo "FAIL dist-test: no $cross_guest image archive in dist (make image ARCH=$cross_guest first)" >&2; exit 1; }
	ld_prefix=/usr/$cross_arch-linux-gnu
	cross_out=$(as_user "export QEMU_LD_PREFIX=$ld_prefix && mkdir cross cross-images && tar -C cross -xzf dist/quicksand-go-*-linux-$cross_arch.tar.gz && cross/*/bin/quicksand image install -dir cross-images dist/debian-$cross_guest-*.qsimage >/dev/null && export PKG_CONFIG_PATH=\$(echo \$PWD/cross/*/lib/pkgconfig) && $cross_cc main.c -o main-cross \$(pkg-config --cflags --libs quicksand) && QUICKSAND_IMAGE_PATH=\$PWD/cross-images ./main-cross")
	check "C on $cross_arch (emulated)" "$cross_out" "$cross_arch"
else
	echo "not checked: the $cross_arch artifacts: make dist built no $cross_arch C tarball (quicksand-go-*-linux-$cross_arch.tar.gz in $out/dist)"
fi
