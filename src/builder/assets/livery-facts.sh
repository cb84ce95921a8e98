#!/bin/sh
# livery-facts: prints this machine's hardware as one JSON object of raw text sections, for
# livery to parse (src/facts/parse.ts): the shell only reads files and runs the tools the image
# has, so what the values mean is decided, and tested, in one place on the server.
#
#   cpuinfo    /proc/cpuinfo, the lines that name the CPU and its topology
#   meminfo    MemTotal from /proc/meminfo
#   sysfs      "<kind> <name> <key> <value>" lines: dmi (/sys/class/dmi/id), block (disks),
#              net (NICs with a device: no loopback, bridges or taps)
#   dmidecode  `dmidecode -t 0,1,4,17` (BIOS, system, processors, DIMMs), when installed
#   ipmi-lan   `ipmitool lan print` over the in-band interface, when /dev/ipmi0 exists
#
# Run as root: the DMI serial and UUID, and dmidecode, are readable by root only.
set -u

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One value per line; a file that is missing or unreadable prints nothing.
value() { [ -r "$1" ] && head -c 512 "$1" 2> /dev/null | tr -d '\000' | head -n 1; }
line() { [ -n "$4" ] && printf '%s %s %s %s\n' "$1" "$2" "$3" "$4"; }

grep -E '^(processor|vendor_id|model name|physical id|core id|cpu cores|siblings|CPU implementer|CPU part)[[:space:]]*:' /proc/cpuinfo > "$work/cpuinfo" 2> /dev/null
grep '^MemTotal:' /proc/meminfo > "$work/meminfo" 2> /dev/null

{
	for key in sys_vendor product_name product_serial product_uuid bios_vendor bios_version bios_date; do
		line dmi - "$key" "$(value "/sys/class/dmi/id/$key")"
	done
	for dev in /sys/block/*; do
		name=${dev##*/}
		# Disks only: not loop, RAM, compressed-swap, optical, device-mapper or RAID devices.
		case "$name" in loop* | ram* | zram* | sr* | fd* | dm-* | md* | nbd*) continue ;; esac
		[ -e "$dev/device" ] || continue
		line block "$name" sectors "$(value "$dev/size")"
		line block "$name" rotational "$(value "$dev/queue/rotational")"
		line block "$name" model "$(value "$dev/device/model")"
		# NVMe and SCSI name the serial under device/, virtio beside the disk.
		serial=$(value "$dev/device/serial")
		[ -n "$serial" ] || serial=$(value "$dev/serial")
		line block "$name" serial "$serial"
	done
	for dev in /sys/class/net/*; do
		name=${dev##*/}
		[ -e "$dev/device" ] || continue
		line net "$name" address "$(value "$dev/address")"
		driver=$(readlink "$dev/device/driver" 2> /dev/null)
		line net "$name" driver "${driver##*/}"
		# Reading speed fails (EINVAL) while the link is down: then it is not known.
		line net "$name" speed "$(value "$dev/speed")"
		if command -v ethtool > /dev/null 2>&1; then
			line net "$name" firmware "$(ethtool -i "$name" 2> /dev/null | sed -n 's/^firmware-version: *//p')"
		fi
	done
} > "$work/sysfs"

: > "$work/dmidecode"
command -v dmidecode > /dev/null 2>&1 && dmidecode -t 0,1,4,17 > "$work/dmidecode" 2> /dev/null

: > "$work/ipmi-lan"
if command -v ipmitool > /dev/null 2>&1; then
	# The in-band interface needs the device node: loading ipmi_devintf creates it when a BMC is there.
	[ -e /dev/ipmi0 ] || modprobe -q ipmi_devintf 2> /dev/null
	[ -e /dev/ipmi0 ] && timeout 20 ipmitool lan print > "$work/ipmi-lan" 2> /dev/null
fi

# A file as one JSON string: backslashes and quotes escaped, tabs and newlines kept as escapes,
# other control characters dropped.
json_text() {
	awk '
		{
			l = $0
			gsub(/\\/, "&&", l); gsub(/"/, "\\\"", l); gsub(/\t/, "\\t", l); gsub(/[\001-\037\177]/, "", l)
			out = out l "\\n"
		}
		END { printf "\"%s\"", out }' "$1"
}

printf '{"format":1'
for section in cpuinfo meminfo sysfs dmidecode ipmi-lan; do
	printf ',"%s":%s' "$section" "$(json_text "$work/$section")"
done
printf '}\n'
