#!/usr/bin/env bash
# Builds livery's Debian package from this checkout (`make build` first, for node_modules and
# the native addons): the sources compiled afresh (no stale files from an older dist/),
# production node_modules only, the addons, and the Node.js runtime running this script
# (Debian 12 ships Node 18; livery needs 20). Usage: packaging/build-deb.sh OUT_DIR
# Prints the path of the .deb it wrote.
set -euo pipefail
out=$(realpath -m "${1:?usage: build-deb.sh OUT_DIR}")
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
for need in node_modules/.bin/tsc native/build/Release/datagram.node; do
  [ -e "$need" ] || { echo "build-deb.sh: $need is missing: run make build first" >&2; exit 1; }
done

version=$(node -p 'require("./package.json").version')
arch=$(dpkg --print-architecture)
work=$(mktemp -d "${TMPDIR:-/tmp}/livery-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
lib=$root/usr/lib/livery

install -d "$lib/native/build/Release" "$root/usr/bin" "$root/etc/livery" "$root/usr/lib/systemd/system" \
  "$root/usr/lib/sysusers.d" "$root/usr/lib/tmpfiles.d" "$root/usr/share/doc/livery" "$root/DEBIAN"
# No source maps: they point into src/, which is not shipped.
node_modules/.bin/tsc -p tsconfig.json --outDir "$lib/dist" --sourceMap false
cp -a pxe-templates package.json "$lib/"
# Production dependencies only: the packages `npm ls --omit=dev` names, each copied whole.
npm ls --omit=dev --parseable --all | sed -n "s|^$repo/node_modules/|node_modules/|p" | sort -u > "$work/production"
xargs -a "$work/production" cp -a --parents -t "$lib"
# The builder's scripts and units sit beside its compiled module, where dist/builder/assets.js looks first.
cp -a src/builder/assets "$lib/dist/builder/assets"
cp -a native/build/Release/*.node "$lib/native/build/Release/"
install -m 0755 "$(node -p process.execPath)" "$lib/node"
# better-sqlite3's C sources, objects and test extension: only its addon is loaded at run time.
sqlite=$lib/node_modules/better-sqlite3
find "$sqlite/build" -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
find "$sqlite/build/Release" -mindepth 1 -maxdepth 1 ! -name better_sqlite3.node -exec rm -rf {} +
rm -rf "$sqlite/deps" "$sqlite/src"

install -m 0755 packaging/livery.sh "$root/usr/bin/livery"
node packaging/conffile.mjs README.md > "$root/etc/livery/livery.toml"
install -m 0644 packaging/livery.service "$root/usr/lib/systemd/system/livery.service"
install -m 0644 packaging/livery.sysusers "$root/usr/lib/sysusers.d/livery.conf"
install -m 0644 packaging/livery.tmpfiles "$root/usr/lib/tmpfiles.d/livery.conf"
install -m 0644 README.md "$root/usr/share/doc/livery/README.md"
install -m 0755 packaging/postinst packaging/prerm packaging/postrm "$root/DEBIAN/"
echo /etc/livery/livery.toml > "$root/DEBIAN/conffiles"

shlibs=$(packaging/shlibs.sh "$root" "$work/shlibs")
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SHLIBS@/$shlibs/" -e "s/@SIZE@/$size/" \
  packaging/control.in > "$root/DEBIAN/control"

mkdir -p "$out"
deb=$out/livery_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zzstd -z9 --build "$root" "$deb" >&2
echo "$deb"
