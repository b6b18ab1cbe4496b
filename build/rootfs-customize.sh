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
# An image with X (debian-desktop) gets its desktop session, which the agent
# starts at boot (/etc/quicksand/autostart), and the check the engine runs
# before it calls the desktop ready (the manifest's ready_command).
if [ -x "$root/usr/lib/xorg/Xorg" ]; then
	mkdir -p "$root/etc/quicksand" "$root/etc/X11/xorg.conf.d"
	cat >"$root/etc/quicksand/autostart" <<'SESSION'
#!/bin/sh
# The desktop: X on the VM's display device, then JWM, logged in as root
# (the user execute runs as by default, so DISPLAY=:0 works for it).
exec >/var/log/quicksand-desktop.log 2>&1
export HOME=/root DISPLAY=:0 PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin
# No udev in the guest: X is told its input devices, the host's virtio
# keyboard and tablet, by their event nodes.
conf=/etc/X11/xorg.conf.d/20-quicksand-input.conf
: >"$conf"
layout=""
for dev in /sys/class/input/event*; do
	[ -e "$dev" ] || continue
	case "$(cat "$dev/device/name" 2>/dev/null)" in
	*Keyboard* | *Tablet* | *Mouse*) ;;
	*) continue ;;
	esac
	node=/dev/input/${dev##*/}
	printf 'Section "InputDevice"\n  Identifier "%s"\n  Driver "evdev"\n  Option "Device" "%s"\nEndSection\n' "${dev##*/}" "$node" >>"$conf"
	layout="$layout  InputDevice \"${dev##*/}\"\n"
done
printf 'Section "ServerLayout"\n  Identifier "quicksand"\n  Screen "screen"\n%bEndSection\n' "$layout" >>"$conf"
Xorg :0 -nolisten tcp -noreset -novtswitch -keeptty vt1 &
i=0
while [ ! -e /tmp/.X11-unix/X0 ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
exec jwm
SESSION
	chmod 0755 "$root/etc/quicksand/autostart"
	# The desktop's menu, taskbar and keys: ctrl+alt+t opens a terminal.
	# No clock: a screen that changes by itself makes screenshots differ.
	cat >"$root/root/.jwmrc" <<'JWMRC'
<?xml version="1.0"?>
<JWM>
  <RootMenu onroot="123">
    <Program label="Terminal">xterm</Program>
    <Program label="Files">pcmanfm</Program>
    <Program label="Browser">firefox-esr</Program>
    <Separator/>
    <Restart label="Restart the desktop"/>
  </RootMenu>
  <Tray x="0" y="-1" height="30" autohide="off">
    <TrayButton label="Menu">root:1</TrayButton>
    <TrayButton label="Terminal">exec:xterm</TrayButton>
    <TrayButton label="Files">exec:pcmanfm</TrayButton>
    <TrayButton label="Browser">exec:firefox-esr</TrayButton>
    <TaskList/>
  </Tray>
  <Desktops width="1" height="1">
    <Background type="solid">#3b4252</Background>
  </Desktops>
  <FocusModel>click</FocusModel>
  <Key mask="CA" key="t">exec:xterm</Key>
  <Key mask="A" key="Tab">nextstacked</Key>
  <Key mask="A" key="F4">close</Key>
</JWM>
JWMRC
	cat >"$root/etc/quicksand/desktop-ready" <<'READY'
#!/bin/sh
# Exits 0 once the window manager runs on :0 (it sets the EWMH check).
DISPLAY=:0 xprop -root _NET_SUPPORTING_WM_CHECK 2>/dev/null | grep -q 'window id'
READY
	chmod 0755 "$root/etc/quicksand/desktop-ready"
	cat >"$root/etc/X11/xorg.conf.d/10-quicksand.conf" <<'XCONF'
# X on QEMU's virtio-gpu, without acceleration (no GPU behind it) and
# without udev (20-quicksand-input.conf names the input devices).
Section "ServerFlags"
  Option "AutoAddDevices" "false"
  Option "AutoEnableDevices" "false"
  Option "DontVTSwitch" "true"
  Option "BlankTime" "0"
  Option "StandbyTime" "0"
  Option "SuspendTime" "0"
  Option "OffTime" "0"
EndSection
Section "Device"
  Identifier "gpu"
  Driver "modesetting"
  Option "AccelMethod" "none"
EndSection
Section "Screen"
  Identifier "screen"
  Device "gpu"
EndSection
XCONF
fi
