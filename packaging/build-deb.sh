#!/usr/bin/env bash
# Builds the Debian package from a clean copy of this tree: the files git tracks or would track
# (not ignored; with their working-tree contents) are copied to a temporary directory, packaging/debian becomes ./debian
# there (dpkg-buildpackage wants it at the top), `dpkg-buildpackage -us -uc` builds the source
# package (.dsc and .tar.xz, after `debian/rules clean`) and the binary one, and all of them
# (and .buildinfo/.changes) land in build-deb/. Needs debhelper, dpkg-dev, fakeroot and the
# Build-Depends of packaging/debian/control (packaging/install-deps.sh installs them all).
#
# Usage: packaging/build-deb.sh [OUTDIR]      (default build-deb)
set -euo pipefail

cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-build-deb}")
work=$(mktemp -d "${TMPDIR:-/tmp}/secrets-run-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT

src=$work/secrets-run
mkdir -p "$src"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
        [ -e "$f" ] && printf '%s\0' "$f"
done | tar --null -T - -cf - | tar -xf - -C "$src"
mv "$src/packaging/debian" "$src/debian"

echo "==> build-deb.sh: dpkg-buildpackage in $src"
(cd "$src" && DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-parallel=$(nproc)}" \
        dpkg-buildpackage -us -uc)

mkdir -p "$out"
rm -f "$out"/*.deb "$out"/*.buildinfo "$out"/*.changes "$out"/*.dsc "$out"/*.tar.*
mv "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$work"/*.dsc "$work"/*.tar.* "$out"/
ls -l "$out"/*.deb "$out"/*.dsc
