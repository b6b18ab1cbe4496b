#!/bin/sh
# The guest's own settings, written into a freshly bootstrapped root file
# system at ROOT, and apt's downloads dropped: the same whether debootstrap
# (as root) or mmdebstrap (in a user namespace) made it.
# Usage: build/rootfs-customize.sh ROOT
set -eu
root=$1
echo quicksand >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tquicksand\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
echo 'nameserver 10.0.2.3' >"$root/etc/resolv.conf"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*_Packages
# An image with matplotlib gets its font cache now: built on first import
# otherwise, seconds under emulation in every sandbox's first chart.
if [ -d "$root/usr/lib/python3/dist-packages/matplotlib" ]; then
	chroot "$root" env HOME=/root MPLBACKEND=Agg python3 -c 'import matplotlib.pyplot'
fi
