#!/usr/bin/env bash
# Prints the Depends the package's ELF files need (Node and the addons link libc, libstdc++,
# libgcc_s), with the minimum versions dpkg-shlibdeps reads from the libraries' symbols files.
# Usage: packaging/shlibs.sh PACKAGE_ROOT SCRATCH_DIR
set -euo pipefail
root=$(realpath "$1")
scratch=$2
# dpkg-shlibdeps wants a source package's debian/control to name the binary package.
mkdir -p "$scratch/debian"
printf 'Source: livery\n\nPackage: livery\nArchitecture: any\n' > "$scratch/debian/control"
mapfile -t elves < <(find "$root" -type f \( -name '*.node' -o -path '*/usr/lib/livery/node' \) | sort)
cd "$scratch"
dpkg-shlibdeps -O "${elves[@]}" 2>/dev/null | sed -n 's/^shlibs:Depends=//p'
