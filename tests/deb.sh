#!/usr/bin/env bash
# Builds the Debian package and checks that it installs and works, without touching this
# machine's installed system (see docs/packaging.md for why it is done this way):
#   1. packaging/build-deb.sh (dpkg-buildpackage -us -uc from a clean copy: the source package
#      and the binary one, about 15 s);
#   2. `dpkg-deb -c` lists /usr/bin/secrets-run, both man pages and both completions;
#   2b. lintian finds no error and no warning in the .deb nor in the .dsc (overrides need a
#      written reason: each override line in packaging/debian must follow a comment);
#   2c. the binary links Debian's shared libyaml, libsodium, libseccomp, libcap and jansson
#      (NEEDED entries), and Depends names their packages (${shlibs:Depends});
#   3. its Depends resolve on this Debian: `apt-get install --simulate ./PKG.deb`;
#   4. `dpkg --root` installs it into a throwaway root with a fresh dpkg database;
#   5. the installed /usr/bin/secrets-run prints the project's version;
#   6. it runs a step with a generated secret, and fails (123) one that prints it, masked;
#   7. `man -l` renders both installed man pages without a warning;
#   8. the installed bash completion, sourced, completes sub-commands and the manifest's secrets;
#   9. `dpkg --root --purge` removes every file it installed.
# Writes build-deb/deb.tap, one TAP case per check, for tests/tally.py (a missing file counts
# as a failure). Steps 2-9 take about 2 s. Exits non-zero if any check failed.
#
# Usage: tests/deb.sh
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1

out=build-deb
tap=$out/deb.tap
mkdir -p "$out"
rm -f "$tap"
cases=()
failed=0
scratch=$(mktemp -d "${TMPDIR:-/tmp}/secrets-run-deb-test.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

ok() { cases+=("ok $(( ${#cases[@]} + 1 )) - deb: $1"); }
not_ok() {   # DESCRIPTION [DETAIL...]: a failed case; DETAIL goes to stderr
        cases+=("not ok $(( ${#cases[@]} + 1 )) - deb: $1")
        failed=1
        shift
        [ $# -eq 0 ] || printf 'deb.sh: %s\n' "$@" >&2
}
finish() {
        { echo "1..${#cases[@]}"; printf '%s\n' "${cases[@]}"; } >"$tap"
        printf '%s\n' "${cases[@]}"
        exit "$failed"
}

# ---- 1. build
for tool in dpkg-buildpackage dh fakeroot; do
        if ! command -v "$tool" >/dev/null; then
                not_ok "no $tool (packaging/install-deps.sh installs dpkg-dev, debhelper, fakeroot)"
                finish
        fi
done
if ! packaging/build-deb.sh "$out" >"$out/build.log" 2>&1; then
        tail -n 40 "$out/build.log" >&2
        not_ok "dpkg-buildpackage failed (log in $out/build.log)"
        finish
fi
version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" meson.build | head -n 1)
debs=("$out"/secrets-run_"$version"_*.deb)
deb=${debs[0]}
if [ ! -e "$deb" ]; then
        not_ok "no secrets-run_${version}_*.deb in $out"
        finish
fi
ok "$(basename "$deb") builds"

# ---- 2. contents
contents=$(dpkg-deb -c "$deb" | awk '{print $NF}')
missing=""
for f in ./usr/bin/secrets-run \
        ./usr/share/man/man1/secrets-run.1.gz \
        ./usr/share/man/man5/secrets.yaml.5.gz \
        ./usr/share/bash-completion/completions/secrets-run \
        ./usr/share/zsh/vendor-completions/_secrets-run \
        ./usr/share/secrets-run/apparmor/secrets-run.apparmor; do
        grep -qxF "$f" <<<"$contents" || missing="$missing ${f#.}"
done
if [ -z "$missing" ]; then
        ok "holds the binary, both man pages, both completions and the AppArmor profile ($(wc -l <<<"$contents") entries)"
else
        not_ok "lacks$missing"
fi

# ---- 2b. lintian, on the binary package and the source package
dsc=$out/secrets-run_$version.dsc
if [ ! -e "$dsc" ]; then
        not_ok "no source package: secrets-run_$version.dsc is not in $out"
elif ! command -v lintian >/dev/null; then
        not_ok "no lintian (packaging/install-deps.sh installs it)"
else
        lint=$(lintian --fail-on error,warning --display-level ">=warning" "$deb" "$dsc" 2>&1)
        lint_status=$?
        lint=$(grep -v '^running with root privileges' <<<"$lint" || true)
        if [ "$lint_status" -eq 0 ] && [ -z "$lint" ]; then
                ok "lintian: no error or warning in $(basename "$deb") and $(basename "$dsc")"
        else
                not_ok "lintian finds errors or warnings (status $lint_status)" "$lint"
        fi
fi
unexplained=$(find packaging/debian -name '*lintian-overrides' -exec awk '
        /^[ \t]*#/ { reason = 1; next }
        /^[ \t]*$/ { next }
        !reason { print FILENAME ": " $0 } { reason = 0 }' {} +)
if [ -z "$unexplained" ]; then
        ok "every lintian override has a written reason"
else
        not_ok "lintian overrides without a reason" "$unexplained"
fi

# ---- 2c. Debian's shared libraries, not embedded copies
extracted=$scratch/extracted
dpkg-deb -x "$deb" "$extracted"
needed=$(readelf -d "$extracted/usr/bin/secrets-run" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
missing=""
for lib in libyaml-0.so libsodium.so libseccomp.so libcap.so libjansson.so libarchive.so; do
        grep -q "^$lib" <<<"$needed" || missing="$missing $lib"
done
for pkg in libyaml-0-2 libsodium23 libseccomp2 libcap2 libjansson4 libarchive13; do
        grep -q "$pkg" <<<"$(dpkg-deb -f "$deb" Depends)" || missing="$missing Depends:$pkg"
done
if [ -z "$missing" ]; then
        ok "links Debian's shared libyaml, libsodium, libseccomp, libcap, jansson, libarchive; Depends names them"
else
        not_ok "not linked to Debian's shared libraries:$missing" "NEEDED: $needed"
fi

# ---- 3. dependencies resolve against this system's packages and apt sources
depends=$(dpkg-deb -f "$deb" Depends)
if sim=$(apt-get install --simulate --no-install-recommends "./$deb" 2>&1) &&
        grep -q '^Inst secrets-run ' <<<"$sim"; then
        ok "Depends ($depends) resolve: apt-get install --simulate"
else
        not_ok "apt-get install --simulate cannot install it" "$sim"
fi

# ---- 4. install into a throwaway root. Its fresh dpkg database knows none of the Depends
# (libc6, ...) and the root has no libraries: dependencies are checked by 3, and the binary
# runs from the root against this system's libraries (5-6).
root=$scratch/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
: >"$root/var/lib/dpkg/status"
# maintainer scripts run on this system, told the root by $DPKG_ROOT: the root has no shell
instd() { dpkg --root="$root" --log=/dev/null --force-script-chrootless "$@"; }
if log=$(instd --force-depends -i "$deb" 2>&1) &&
        instd -s secrets-run 2>/dev/null | grep -qx 'Status: install ok installed'; then
        ok "dpkg --root installs it ($(instd -L secrets-run | wc -l) paths)"
else
        not_ok "dpkg --root -i failed" "$log"
fi
bin=$root/usr/bin/secrets-run

# ---- 5. the installed binary
if [ "$("$bin" --version 2>&1)" = "secrets-run $version" ]; then
        ok "installed /usr/bin/secrets-run --version prints 'secrets-run $version'"
else
        not_ok "installed /usr/bin/secrets-run --version does not print 'secrets-run $version'"
fi

# ---- 6. a tiny run: a generated secret delivered as a file; printing it fails the step
proj=$scratch/proj
mkdir -p "$proj"
cat >"$proj/secrets.yaml" <<'EOF'
version: 1
defaults: {environment: dev}
environments: {dev: {}}
secrets:
  DEB_TOKEN: {generate: {length: 24}}
EOF
run_installed() {   # ARGS...: the installed binary in $proj, audit log and state in $scratch
        (cd "$proj" && XDG_STATE_HOME=$scratch/state XDG_CONFIG_HOME=$scratch/config \
                "$bin" "$@")
}
# shellcheck disable=SC2016  # the step's shell expands these, not this one
quiet=$(run_installed -- sh -c 'test "$(wc -c <"$DEB_TOKEN_FILE")" -eq 24' 2>&1)
quiet_status=$?
# shellcheck disable=SC2016  # likewise
leak=$(run_installed -- sh -c 'echo "token: $(cat "$DEB_TOKEN_FILE")"' 2>&1)
leak_status=$?
if [ "$quiet_status" -eq 0 ] && [ "$leak_status" -eq 123 ] &&
        grep -qxF 'token: [REDACTED:DEB_TOKEN]' <<<"$leak"; then
        ok "installed secrets-run runs a step (0) and masks a printed secret (123)"
else
        not_ok "installed secrets-run run: statuses $quiet_status and $leak_status (want 0 and 123)" \
                "$quiet" "$leak"
fi

# ---- 7. the installed man pages render
man_ok=1
for page in man1/secrets-run.1.gz man5/secrets.yaml.5.gz; do
        if ! command -v man >/dev/null; then
                man_ok=0; warn="man is not installed (man-db)"; break
        fi
        text=$(MANWIDTH=80 MANPAGER=cat man -l "$root/usr/share/man/$page" 2>/dev/null)
        warn=$(MANWIDTH=80 man --warnings -l "$root/usr/share/man/$page" 2>&1 >/dev/null)
        if [ -n "$warn" ] || ! grep -q '^NAME' <<<"$text"; then
                man_ok=0; warn="$page: ${warn:-no NAME section}"; break
        fi
done
if [ "$man_ok" -eq 1 ]; then
        ok "man -l renders secrets-run(1) and secrets.yaml(5) without warnings"
else
        not_ok "man -l: the installed pages do not render cleanly" "$warn"
fi

# ---- 8. the installed bash completion
completion=$root/usr/share/bash-completion/completions/secrets-run
complete_words() {   # WORDS...: COMPREPLY for the command line, cursor on the last word
        (cd "$proj" && bash --norc --noprofile -c \
                'source "$0" && COMP_WORDS=("$@") && COMP_CWORD=$(( $# - 1 )) && _secrets_run;
                 printf "%s\n" "${COMPREPLY[@]}"' "$completion" "$@" 2>&1)
}
commands=$(complete_words secrets-run "")
names=$(complete_words secrets-run --only "")
if grep -qx check <<<"$commands" && grep -qx run <<<"$commands" &&
        [ "$names" = DEB_TOKEN ]; then
        ok "the installed bash completion completes sub-commands and secret names"
else
        not_ok "the installed bash completion" "sub-commands: $commands" "--only: $names"
fi

# ---- 9. removal leaves nothing behind
if log=$(instd --purge secrets-run 2>&1) &&
        [ -z "$(find "$root/usr" -mindepth 1 -not -type d 2>/dev/null)" ]; then
        ok "dpkg --root --purge removes every installed file"
else
        not_ok "dpkg --root --purge left files" "$log" "$(find "$root/usr" -not -type d)"
fi

echo "==> deb.sh: $deb: ${#cases[@]} checks, $([ "$failed" -eq 0 ] && echo all passed || echo some FAILED)"
finish
