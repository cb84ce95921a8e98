#!/bin/busybox sh
# livery initramfs /init: bring up the boot NIC, fetch the rootfs squashfs over HTTP into RAM,
# verify its sha256, mount it read-only under a tmpfs overlay and switch_root into it.
# Kernel command line: BOOTIF=01-aa-bb-cc-dd-ee-ff livery.rootfs=URL livery.rootfs.sha256=HEX

/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /run /tmp /newroot
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin

mount -t proc -o nosuid,nodev,noexec proc /proc
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mount -t devtmpfs -o mode=0755,nosuid devtmpfs /dev
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mkdir -p /run/livery

FETCH_TRIES=3
FETCH_TIMEOUT_SECONDS=600
DHCP_TRIES=3
LINK_WAIT_SECONDS=20

say() { echo "livery-initrd: $*"; }

fail() {
	say "FATAL: $*"
	say "boot stopped; a shell follows for diagnosis (reboot to try again)"
	exec sh
}

# Seconds since kernel start with centiseconds, for progress lines.
now() { read -r up _ < /proc/uptime; echo "$up"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

t_start=$(now)
. /lib/livery/cmdline.sh
bootif=$(cmdline_value BOOTIF /proc/cmdline)
rootfs_url=$(cmdline_value livery.rootfs /proc/cmdline)
rootfs_sha=$(cmdline_value livery.rootfs.sha256 /proc/cmdline | tr 'A-F' 'a-f')
[ -n "$rootfs_url" ] || fail "no livery.rootfs=URL on the kernel command line"
[ -n "$rootfs_sha" ] || fail "no livery.rootfs.sha256=HEX on the kernel command line; refusing to boot an unverified rootfs"

# BOOTIF=01-aa-bb-cc-dd-ee-ff names the NIC the machine PXE-booted from (01 = Ethernet).
boot_mac=
if [ -n "$bootif" ]; then
	boot_mac=$(echo "${bootif#01-}" | tr 'A-F-' 'a-f:')
fi

loaded=0
while read -r module; do
	insmod "/lib/modules/$module" 2>/dev/null && loaded=$((loaded + 1))
done < /etc/livery-modules
say "loaded $loaded kernel modules"

mac_of() { cat "/sys/class/net/$1/address" 2>/dev/null; }

# The boot NIC: the one whose MAC BOOTIF names, else the first with link. Drivers probe
# asynchronously, so poll for a bounded time.
find_nic() {
	for path in /sys/class/net/*; do
		nic=${path##*/}
		[ "$nic" = lo ] && continue
		if [ -n "$boot_mac" ]; then
			[ "$(mac_of "$nic")" = "$boot_mac" ] && { echo "$nic"; return 0; }
		else
			ip link set "$nic" up 2>/dev/null
			[ "$(cat "$path/carrier" 2>/dev/null)" = 1 ] && { echo "$nic"; return 0; }
		fi
	done
	return 1
}

nic=
waited=0
while [ "$waited" -lt "$LINK_WAIT_SECONDS" ]; do
	nic=$(find_nic) && break
	sleep 1
	waited=$((waited + 1))
done
if [ -z "$nic" ]; then
	say "network interfaces present: $(ls /sys/class/net | tr '\n' ' ')"
	if [ -n "$boot_mac" ]; then fail "no network interface with MAC $boot_mac (from BOOTIF) appeared"; fi
	fail "no network interface with link appeared within $LINK_WAIT_SECONDS s"
fi
mac=$(mac_of "$nic")
say "boot interface $nic ($mac)"
ip link set "$nic" up

try=1
until udhcpc -i "$nic" -s /etc/livery-udhcpc -f -q -n -t 5 -T 3 -V livery-initrd; do
	[ "$try" -ge "$DHCP_TRIES" ] && fail "no DHCP lease on $nic after $DHCP_TRIES attempts"
	try=$((try + 1))
	say "DHCP attempt $try of $DHCP_TRIES"
done
. /run/livery/net.env
say "address $ip/$prefix via ${router:-none} dns ${dns:-none} on $nic"

mkdir -p /run/livery/image /run/livery/ro /run/livery/rw
mount -t tmpfs -o mode=0700 tmpfs /run/livery/image
image=/run/livery/image/rootfs.squashfs
try=1
while :; do
	say "fetching rootfs $rootfs_url (attempt $try of $FETCH_TRIES)"
	t0=$(now)
	# Debian's static busybox wget has no -T (it crashes on it); timeout bounds a stalled fetch.
	if timeout "$FETCH_TIMEOUT_SECONDS" wget -q -O "$image" "$rootfs_url" 2> /run/livery/wget.err; then
		size=$(stat -c %s "$image")
		say "fetched $((size / 1048576)) MiB in $(since "$t0") s"
		actual=$(sha256sum "$image" | cut -d' ' -f1)
		if [ "$actual" = "$rootfs_sha" ]; then
			say "rootfs sha256 verified ($actual)"
			break
		fi
		say "rootfs sha256 MISMATCH: expected $rootfs_sha, got $actual"
	else
		say "fetching $rootfs_url failed: $(cat /run/livery/wget.err)"
	fi
	rm -f "$image"
	[ "$try" -ge "$FETCH_TRIES" ] && fail "no verified rootfs from $rootfs_url after $FETCH_TRIES attempts"
	sleep $((try * 2))
	try=$((try + 1))
done

mount -t squashfs -o loop,ro "$image" /run/livery/ro || fail "cannot mount the rootfs squashfs"
mount -t tmpfs -o mode=0755 tmpfs /run/livery/rw
mkdir -p /run/livery/rw/upper /run/livery/rw/work
mount -t overlay -o lowerdir=/run/livery/ro,upperdir=/run/livery/rw/upper,workdir=/run/livery/rw/work overlay /newroot ||
	fail "cannot mount the overlay root"
# /sbin/init is usually an absolute symlink (to systemd), which only resolves inside the new root.
[ -L /newroot/sbin/init ] || [ -x /newroot/sbin/init ] || fail "the rootfs has no /sbin/init"

# The real system keeps this NIC on DHCP (same MAC as client id, so the same lease) and
# keeps the address while networkd takes over, so the network never drops during boot.
mkdir -p /newroot/etc/systemd/network
cat > /newroot/etc/systemd/network/10-livery-boot.network <<EOF
# Written by the livery initramfs for the interface the machine booted from.
[Match]
MACAddress=$mac

[Network]
DHCP=ipv4
KeepConfiguration=yes

[DHCPv4]
ClientIdentifier=mac
EOF
cp /etc/resolv.conf /newroot/etc/resolv.conf

for fs in dev proc sys run; do
	mount --move "/$fs" "/newroot/$fs" || fail "cannot move /$fs into the new root"
done
say "switching to the rootfs after $(awk -v a="$t_start" -v b="$(cut -d' ' -f1 /newroot/proc/uptime)" 'BEGIN { printf "%.1f", b - a }') s in the initramfs"
exec switch_root /newroot /sbin/init
