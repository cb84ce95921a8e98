# Kernel command line reading shared by the livery initramfs (/init) and the livery agent;
# sourced, not run. Busybox sh and dash.

# cmdline_value NAME FILE: prints the value of the first NAME=... word of FILE (a kernel
# command line) and succeeds; fails when there is none. The first one, because livery writes
# its own parameters (BOOTIF, livery.*) before the image's and the machine's arguments: a
# repeat further on is not livery's and must not replace the rootfs URL or its checksum.
# The file is read with the shell's own read, not cat: a process costs time on a slow machine.
cmdline_value() {
	cmdline_words=
	while IFS= read -r cmdline_line || [ -n "$cmdline_line" ]; do cmdline_words="$cmdline_words $cmdline_line"; done < "$2"
	set -f
	for arg in $cmdline_words; do
		case "$arg" in
			"$1"=*)
				set +f
				printf '%s\n' "${arg#"$1"=}"
				return 0
				;;
		esac
	done
	set +f
	return 1
}
