#!/usr/bin/env bash
# Builds the default guest image "debian" for one architecture and installs
# it into an image folder that the engine searches by name.
#
#   build/image.sh ARCH AGENT_BINARY OUT_DIR IMAGES_DIR [NAME]
#
# NAME is the image: "debian" (the default) or a variant built the same way
# with more packages on its root disk ("debian-python": a Jupyter kernel
# with numpy, pandas and matplotlib, for run_code). Variants share the
# kernel and the initrd (the agent) with "debian".
# ARCH is x86_64 or arm64. Downloads are cached under OUT_DIR/cache, and each
# step is skipped when what it makes is newer than what it is made from, so a
# second build with nothing changed takes seconds. As root the root file
# system comes from debootstrap; as any other user from mmdebstrap in a user
# namespace (its unshare mode: needs the packages mmdebstrap, uidmap and
# fakeroot, and the user's subordinate ids in /etc/subuid and /etc/subgid).
set -euo pipefail

arch=${1:?arch}
# Absolute: some steps run from the source tree.
agent=$(realpath "${2:?agent binary}")
out=$(realpath -m "${3:?output folder}")
images=$(realpath -m "${4:?images folder}")
here=$(cd "$(dirname "$0")" && pwd)
name=${5:-debian}

# The guest is Debian bookworm, built from the host's own apt (kernel
# packages of the guest's architecture, busybox) and debootstrap: only a
# Debian host has those under the names used here (tested: Debian 12).
# Elsewhere, say so now rather than halfway through.
host_os=$( (. /etc/os-release 2>/dev/null && echo "${ID:-unknown} ${VERSION_ID:-}") || echo unknown)
case "$host_os" in
debian*) ;;
*)
	echo "image.sh: building the guest image needs a Debian host (its apt, debootstrap and kernel packages); this is $host_os. Build the image on Debian 12 and copy the image folder (see README)." >&2
	exit 2
	;;
esac

suite=bookworm
# Everyday tools people expect in a sandbox that minbase lacks.
packages=procps,iproute2,curl,ca-certificates,python3
# What each image adds to the default, and what its manifest says of it.
extra_packages=
stub_packages=
extra_modules=
manifest_extra=
case "$name" in
debian) ;;
debian-python)
	# Debian's own packages: the kernel (ipykernel pulls in IPython, jupyter
	# client, pyzmq and the inline matplotlib backend) and the libraries
	# agents reach for first.
	# python3-munkres: the alternative matplotlib's fonttools takes instead
	# of scipy, which would bring a compiler and boost (the image was 1.5 GB
	# on disk with them, 0.9 GB without).
	extra_packages="python3-ipykernel python3-numpy python3-pandas python3-matplotlib python3-munkres"
	# The engine starts this code context before it takes the warm-start
	# template, so a warm start hands out a kernel already running.
	manifest_extra='"code_prestart": "python",'
	;;
debian-desktop)
	# A desktop on the VM's display device (virtio-gpu): X (modesetting,
	# evdev input: the guest has no udev), the JWM desktop (a taskbar and a
	# menu, without icewm's image libraries: ghostscript, x265), a terminal,
	# a file manager, a browser and fonts.
	# The agent starts it at boot (/etc/quicksand/autostart, written by
	# rootfs-customize.sh); the engine drives screen, keyboard and mouse
	# from the host through QEMU's monitor.
	extra_packages="xserver-xorg-core xserver-xorg-input-evdev x11-utils jwm xterm pcmanfm firefox-esr fonts-dejavu-core"
	# X depends on Mesa's GL, whose drivers bring LLVM (165 MB): nothing here
	# renders with GL (X without acceleration, Firefox's own software
	# renderer), so an empty package of the same version stands in for them.
	stub_packages="libgl1-mesa-dri"
	extra_modules="virtio_gpu virtio_input evdev"
	# The engine waits for this before it takes the warm-start template (and
	# before a cold-booted sandbox is handed out): the window manager runs.
	manifest_extra='"desktop": true, "desktop_ready": "/etc/quicksand/desktop-ready",'
	;;
*)
	echo "image.sh: unknown image $name (debian, debian-python or debian-desktop)" >&2
	exit 2
	;;
esac
# Drivers the guest needs, loaded by the initrd in dependency order.
# qemu_fw_cfg: the agent's token arrives as a firmware config file, not on
# the kernel command line. 9p and 9pnet_fd: shared folders (the host serves
# them over 9P on a connection to the agent).
modules="virtio_pci virtio_mmio virtio_blk virtio_net virtio_rng virtio_console crc32c_generic ext4 qemu_fw_cfg 9p 9pnet_fd"
# Zero pages as the guest frees them: snapshots (templates, checkpoints,
# saves) skip zero pages, so memory a guest used and gave back costs nothing
# to checkpoint (measured: 0.8 s -> 0.15 s for an idle guest's checkpoint).
common_args="init_on_free=1"
# Root disk size: a sparse file, so unused space costs nothing on the host.
disk_size=4G

case "$arch" in
x86_64)
	debarch=amd64
	console=ttyS0
	# Skip probing hardware the microvm machine does not have.
	fast_boot="i8042.noaux i8042.nomux i8042.nopnp i8042.nokbd 8250.nr_uarts=1 tsc=reliable no_timer_check cryptomgr.notests nowatchdog"
	;;
arm64)
	debarch=arm64
	console=ttyAMA0
	fast_boot="cryptomgr.notests nowatchdog"
	;;
*)
	echo "image.sh: unknown architecture $arch (x86_64 or arm64)" >&2
	exit 2
	;;
esac

cache="$out/cache/$debarch"
work="$out/$arch"
mkdir -p "$cache" "$work"
step() { printf '==> [%s %s] %s\n' "$name" "$arch" "$*"; }

# The Debian mirror the host's apt uses, unless DEBIAN_MIRROR says otherwise.
mirror() {
	if [ -n "${DEBIAN_MIRROR:-}" ]; then
		echo "$DEBIAN_MIRROR"
		return
	fi
	local m
	m=$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n1 || true)
	[ -n "$m" ] || m=$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
	[ -n "$m" ] || { echo "image.sh: no Debian mirror found in the apt sources; set DEBIAN_MIRROR" >&2; exit 1; }
	echo "$m"
}

# download PACKAGE: fetch a package for the guest architecture into the cache
# (once) and print the path of the .deb.
download() {
	local pkg=$1 deb
	deb=$(ls "$cache/${pkg}_"*"_$debarch.deb" 2>/dev/null | head -n1 || true)
	if [ -z "$deb" ]; then
		(cd "$cache" && apt-get download -q "$pkg:$debarch" >&2) || {
			echo "image.sh: cannot download $pkg:$debarch; for arm64 run 'make deps' (it adds the arm64 architecture to apt)" >&2
			exit 1
		}
		deb=$(ls "$cache/${pkg}_"*"_$debarch.deb" | head -n1)
	fi
	echo "$deb"
}

# --- kernel -----------------------------------------------------------------
kernel_pkg=$(apt-cache depends "linux-image-$debarch:$debarch" 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}' | sed 's/:.*//')
[ -n "$kernel_pkg" ] || { echo "image.sh: apt knows no linux-image-$debarch; run 'make deps'" >&2; exit 1; }
kernel_version=${kernel_pkg#linux-image-}
kernel_deb=$(download "$kernel_pkg")
ktree="$work/kernel-tree"
if [ ! -e "$ktree/.done" ] || [ "$kernel_deb" -nt "$ktree/.done" ]; then
	step "unpacking $kernel_pkg"
	rm -rf "$ktree"
	dpkg-deb -x "$kernel_deb" "$ktree"
	touch "$ktree/.done"
fi
vmlinuz="$ktree/boot/vmlinuz-$kernel_version"

if [ "$arch" = x86_64 ] && [ ! "$work/vmlinux" -nt "$vmlinuz" ]; then
	# The ELF kernel boots through PVH, skipping the decompressor: about twice
	# as fast under TCG. Find the XZ payload in the bzImage and unpack it.
	step "extracting the uncompressed kernel"
	offset=$(LC_ALL=C grep -aboP '\xfd7zXZ\x00' "$vmlinuz" | head -n1 | cut -d: -f1)
	[ -n "$offset" ] || { echo "image.sh: no XZ payload in $vmlinuz" >&2; exit 1; }
	tail -c "+$((offset + 1))" "$vmlinuz" | xz -dc >"$work/vmlinux.tmp" 2>/dev/null || true
	[ "$(head -c 4 "$work/vmlinux.tmp" | od -An -c | tr -d ' ')" = '177ELF' ] || { echo "image.sh: the unpacked kernel is not ELF" >&2; exit 1; }
	mv "$work/vmlinux.tmp" "$work/vmlinux"
fi

# --- initrd -----------------------------------------------------------------
busybox_deb=$(download busybox-static)
# An image that needs more drivers has an initrd of its own.
initrd="$work/initrd.img"
if [ -n "$extra_modules" ]; then
	modules="$modules $extra_modules"
	initrd="$work/initrd-$name.img"
fi
if [ ! "$initrd" -nt "$agent" ] || [ ! "$initrd" -nt "$here/init" ] || [ ! "$initrd" -nt "$kernel_deb" ] || [ ! "$initrd" -nt "$busybox_deb" ] || [ ! "$initrd" -nt "$0" ]; then
	step "building the initrd"
	stage="$work/initrd-stage-$name"
	rm -rf "$stage"
	mkdir -p "$stage"/{bin,dev,proc,sys,newroot,lib/modules}
	dpkg-deb --fsys-tarfile "$busybox_deb" | tar -x -C "$work" ./bin/busybox
	mv "$work/bin/busybox" "$stage/bin/busybox"
	for applet in sh mount insmod ip arp hostname sleep cat cp mkdir switch_root poweroff; do
		ln -s busybox "$stage/bin/$applet"
	done
	mdir="$ktree/lib/modules/$kernel_version"
	(cd "$here/.." && go run ./build/moddeps "$mdir" $modules) >"$stage/lib/modules/load-order"
	while read -r m; do
		mkdir -p "$stage/lib/modules/$(dirname "$m")"
		cp "$mdir/$m" "$stage/lib/modules/$m"
	done <"$stage/lib/modules/load-order"
	install -m 0755 "$here/init" "$stage/init"
	install -m 0755 "$agent" "$stage/quicksand-agent"
	# Uncompressed: under TCG, unpacking a compressed initrd costs more than
	# loading the bigger file.
	(cd "$stage" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) >"$initrd.tmp"
	mv "$initrd.tmp" "$initrd"
fi

# --- root file system -------------------------------------------------------
# As root through a folder debootstrap fills; as another user through a
# tarball mmdebstrap makes in a user namespace (outside it the files would
# belong to subordinate ids; a tarball keeps them root's, as the guest must
# see them).
# The default image keeps the names it always had; a variant's root file
# system and disk are its own, beside them.
root_name=rootfs
[ "$name" = debian ] || root_name="rootfs-$name"
disk="$work/$root_name.ext4"
# What the root disk is made from; a disk whose key (in $disk.key) differs
# is made again.
key="$suite $debarch $packages $extra_packages${extra_packages:+ slim held-stubs:$stub_packages} customize:$(sha256sum "$here/rootfs-customize.sh" | cut -c1-16)"
if [ "$debarch" != "$(dpkg --print-architecture)" ] && [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
	# Foreign binaries run through qemu-user-static and binfmt_misc.
	[ "$(id -u)" = 0 ] || { echo "image.sh: building the $arch image here needs qemu-user-static registered with binfmt_misc: run 'sudo make deps' (or build it once as root)" >&2; exit 1; }
	[ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
	update-binfmts --enable qemu-aarch64
fi
# The ext4 root disk from a folder, with the owners the folder shows (to
# fakeroot's tools, the ones it recorded).
mkfs_root=(mkfs.ext4 -q -F -L quicksand-root)
quiet_bootstrap() { while read -r line; do case "$line" in I:\ Retrieving* | I:\ Validating* | I:\ Resolving* | I:\ Checking* | I:\ Found*) ;; *) echo "    $line" ;; esac; done; }
if [ -e "$disk" ] && [ "$(cat "$disk.key" 2>/dev/null)" = "$key" ]; then
	: # up to date
elif [ "$(id -u)" = 0 ]; then
	rootfs="$work/$root_name"
	step "debootstrap $suite ($debarch, minbase + $packages)"
	rm -rf --one-file-system "$rootfs"
	mkdir -p "$out/cache/debs-$debarch"
	debootstrap --variant=minbase --arch="$debarch" --include="$packages" \
		--cache-dir="$(cd "$out/cache/debs-$debarch" && pwd)" "$suite" "$rootfs" "$(mirror)" | quiet_bootstrap
	[ -x "$rootfs/bin/sh" ] || { echo "image.sh: debootstrap failed" >&2; exit 1; }
	if [ -n "$extra_packages" ]; then
		# Through apt in the new system: debootstrap's own resolver takes
		# no virtual packages (python3-zmq needs one).
		step "apt-get install $extra_packages"
		# What dpkg installs from here on leaves out translations, manual
		# pages and documentation (copyright notices kept): 140 MB of
		# debian-desktop.
		cat >"$rootfs/etc/dpkg/dpkg.cfg.d/quicksand-slim" <<'SLIM'
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
SLIM
		mount -t proc proc "$rootfs/proc"
		mount --bind "$out/cache/debs-$debarch" "$rootfs/var/cache/apt/archives"
		trap 'umount "$rootfs/var/cache/apt/archives" "$rootfs/proc" 2>/dev/null || true' EXIT
		chroot "$rootfs" apt-get -q update >/dev/null
		for stub in $stub_packages; do
			# An empty package of the version apt would install, which
			# the packages that depend on it take for the real one.
			version=$(chroot "$rootfs" apt-cache policy "$stub" | awk '/Candidate:/ {print $2}')
			mkdir -p "$rootfs/tmp/stub/DEBIAN"
			printf 'Package: %s\nVersion: %s\nArchitecture: %s\nMulti-Arch: same\nMaintainer: Quicksand-Go <build/image.sh>\nDescription: empty stand-in for %s in a Quicksand-Go image\n' \
				"$stub" "$version" "$debarch" "$stub" >"$rootfs/tmp/stub/DEBIAN/control"
			dpkg-deb --build "$rootfs/tmp/stub" "$rootfs/tmp/stub.deb" >/dev/null
			chroot "$rootfs" dpkg -i /tmp/stub.deb >/dev/null
			# Held: apt would otherwise take the real one for an upgrade.
			chroot "$rootfs" apt-mark hold "$stub" >/dev/null
			rm -rf "$rootfs/tmp/stub" "$rootfs/tmp/stub.deb"
		done
		# shellcheck disable=SC2086 # a list of package names
		DEBIAN_FRONTEND=noninteractive chroot "$rootfs" apt-get -q install -y --no-install-recommends $extra_packages | grep -E '^(E:|Err|[0-9]+ upgraded)' || true
		umount "$rootfs/var/cache/apt/archives" "$rootfs/proc"
		trap - EXIT
		chroot "$rootfs" sh -c 'for p in "$@"; do dpkg -s "$p" >/dev/null || { echo "image.sh: $p did not install" >&2; exit 1; }; done' sh $extra_packages
	fi
	"$here/rootfs-customize.sh" "$rootfs"
	step "writing the ext4 root disk ($disk_size, sparse)"
	rm -f "$disk.tmp"
	"${mkfs_root[@]}" -d "$rootfs" "$disk.tmp" "$disk_size"
	mv "$disk.tmp" "$disk"
	echo "$key" >"$disk.key"
	# The disk holds it all; the folder would only take space (0.8 GB for
	# a variant). --one-file-system: never into a mount left behind.
	rm -rf --one-file-system "$rootfs"
else
	for tool in mmdebstrap newuidmap fakeroot; do
		command -v $tool >/dev/null ||
			{ echo "image.sh: building as a user other than root needs mmdebstrap, uidmap and fakeroot (sudo apt install mmdebstrap uidmap fakeroot), or run it as root" >&2; exit 1; }
	done
	grep -q "^$(id -un):" /etc/subuid 2>/dev/null ||
		{ echo "image.sh: building as $(id -un) needs subordinate ids: sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 $(id -un)" >&2; exit 1; }
	step "mmdebstrap $suite as $(id -un), in a user namespace ($debarch, minbase + $packages)"
	# The hook is given as text: it runs as the namespace's root, a
	# subordinate id that may not enter this user's folders.
	rm -rf "$disk.tmp" "$disk.key" "$work/$root_name.tar" "$work/$root_name-tree"
	# (A variant is installed in the same go: without the stand-in
	# packages and with its documentation, so larger than as root.)
	mmdebstrap --mode=unshare --variant=minbase --arch="$debarch" --include="$packages${extra_packages:+,${extra_packages// /,}}" --format=tar \
		--customize-hook="$(cat "$here/rootfs-customize.sh")" \
		"$suite" "$work/$root_name.tar" "$(mirror)" 2>&1 | quiet_bootstrap
	[ -s "$work/$root_name.tar" ] || { echo "image.sh: mmdebstrap failed" >&2; exit 1; }
	# The tarball holds the owners and device nodes the guest needs; fakeroot
	# lets tar keep them and mkfs.ext4 read them back without root.
	step "writing the ext4 root disk ($disk_size, sparse; under fakeroot)"
	fakeroot sh -euc 'mkdir "$1" && tar -C "$1" -xpf "$2" && shift 2 && exec "$@"' \
		sh "$work/$root_name-tree" "$work/$root_name.tar" "${mkfs_root[@]}" -d "$work/$root_name-tree" "$disk.tmp" "$disk_size"
	rm -rf "$work/$root_name-tree" "$work/$root_name.tar"
	mv "$disk.tmp" "$disk"
	echo "$key" >"$disk.key"
fi

# --- manifest and install ---------------------------------------------------
kernel_file=vmlinuz
[ "$arch" = x86_64 ] && kernel_file=vmlinux
dest="$images/$name-$arch"
if [ ! "$dest/manifest.json" -nt "$0" ] || [ ! "$dest/manifest.json" -nt "$disk" ] || [ ! "$dest/manifest.json" -nt "$initrd" ] || [ ! "$dest/manifest.json" -nt "$vmlinuz" ]; then
	step "installing into $dest"
	tmp="$images/.$name-$arch.tmp"
	rm -rf "$tmp"
	mkdir -p "$tmp"
	cp "$vmlinuz" "$tmp/vmlinuz"
	[ "$arch" = x86_64 ] && cp "$work/vmlinux" "$tmp/vmlinux"
	cp "$initrd" "$tmp/initrd.img"
	# A second name for the same file where it can be (the image is never
	# written: sandboxes write to overlays over it, and a rebuild writes a
	# new file): 0.25-0.9 GB an image not copied.
	ln -f "$disk" "$tmp/rootfs.ext4" 2>/dev/null || cp --sparse=always "$disk" "$tmp/rootfs.ext4"
	cat >"$tmp/manifest.json" <<EOF
{
  "name": "$name",$manifest_extra
  "arch": "$arch",
  "kernel": "$kernel_file",
  "kernel_compressed": "vmlinuz",
  "initrd": "initrd.img",
  "rootfs": "rootfs.ext4",
  "kernel_args": "root=/dev/vda rw rootfstype=ext4 console=$console quiet loglevel=0 panic=-1 $common_args $fast_boot",
  "kernel_version": "$kernel_version",
  "build_id": "$(date -u +%Y%m%dT%H%M%SZ)-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
}
EOF
	rm -rf "$dest"
	mv "$tmp" "$dest"
fi
step "ready: $dest ($(du -sh --apparent-size "$dest" | cut -f1) apparent, $(du -sh "$dest" | cut -f1) on disk)"
