#!/usr/bin/env bash
# Builds the Debian package (packaging/build-deb.sh: dpkg-buildpackage -us -uc -b from a clean
# copy of the tree, about 15 s) and checks it: `dpkg-deb -c` lists /usr/bin/secrets-run, both
# man pages and the bash and zsh completions; the binary extracted with `dpkg-deb -x` runs and
# prints the project's version. Writes build-deb/deb.tap ("ok 1 - ..." or "not ok 1 - ...")
# for tests/tally.py, which counts it as one test. Exits non-zero on any failure.
#
# Usage: tests/deb.sh
set -uo pipefail

cd "$(dirname "$0")/.."

out=build-deb
tap=$out/deb.tap
mkdir -p "$out"
rm -f "$tap"

result() {   # STATUS DESCRIPTION
        { echo "1..1"; [ "$1" -eq 0 ] && echo "ok 1 - $2" || echo "not ok 1 - $2"; } >"$tap"
        exit "$1"
}

for tool in dpkg-buildpackage dh fakeroot; do
        if ! command -v "$tool" >/dev/null; then
                echo "deb.sh: $tool not found (packaging/install-deps.sh installs dpkg-dev, debhelper, fakeroot)" >&2
                result 1 "deb: no $tool"
        fi
done

if ! packaging/build-deb.sh "$out" > "$out/build.log" 2>&1; then
        tail -n 40 "$out/build.log" >&2
        result 1 "deb: dpkg-buildpackage failed (log in $out/build.log)"
fi

version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" meson.build | head -n 1)
deb=$(ls "$out"/secrets-run_"$version"_*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || result 1 "deb: no secrets-run_${version}_*.deb in $out"

contents=$(dpkg-deb -c "$deb" | awk '{print $NF}')
missing=""
for f in ./usr/bin/secrets-run \
        ./usr/share/man/man1/secrets-run.1.gz \
        ./usr/share/man/man5/secrets.yaml.5.gz \
        ./usr/share/bash-completion/completions/secrets-run \
        ./usr/share/zsh/vendor-completions/_secrets-run; do
        grep -qxF "$f" <<<"$contents" || missing="$missing ${f#.}"
done
[ -z "$missing" ] || result 1 "deb: $deb lacks$missing"

root=$out/root
rm -rf "$root"
dpkg-deb -x "$deb" "$root" || result 1 "deb: dpkg-deb -x failed"
if ! "$root/usr/bin/secrets-run" --version | grep -qxF "secrets-run $version"; then
        result 1 "deb: the packaged binary does not print 'secrets-run $version'"
fi
if ! zcat "$root/usr/share/man/man1/secrets-run.1.gz" | grep -q '^\.TH'; then
        result 1 "deb: the packaged secrets-run.1 is no man page"
fi
echo "==> deb.sh: $deb: $(wc -l <<<"$contents") entries, all expected ones present"
result 0 "deb: $(basename "$deb") builds and holds the binary, man pages and completions"
