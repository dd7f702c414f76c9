#!/bin/sh
# Installs every package needed to build and test secrets-run on Debian 12.
# Idempotent and non-interactive: packages already present are left alone.
set -eu

PACKAGES="
  build-essential meson ninja-build pkg-config
  libseccomp-dev libsodium-dev libcurl4-openssl-dev libyaml-dev libcap-dev libjansson-dev
  libarchive-dev nettle-dev liblzma-dev libzstd-dev libbz2-dev zlib1g-dev
  clang llvm libclang-rt-14-dev
  python3 python3-pytest python3-yaml
  scdoc bash-completion zsh
  debhelper dpkg-dev fakeroot
  util-linux procps git ca-certificates
  bubblewrap keyutils
  postgresql python3-psycopg2 openssl
"

missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done

if [ -z "$missing" ]; then
  echo "install-deps: all build and test dependencies are present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing:$missing"
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
