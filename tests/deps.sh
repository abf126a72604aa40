#!/bin/bash
# tests/deps.sh: install the Debian packages postern needs to build and to
# run its tests, when they are missing.  Safe to run repeatedly.
#   tests/deps.sh          build + test dependencies
#   tests/deps.sh build    build dependencies only
set -euo pipefail

build_pkgs=(gcc clang meson ninja-build pkg-config libssl-dev libunbound-dev
  libevent-dev liblmdb-dev libpcre2-dev libpsl-dev publicsuffix dns-root-data
  libcdb-dev libcrypt-dev)
test_pkgs=(python3 python3-pytest python3-dnslib python3-dkim python3-yaml
  python3-spf python3-authheaders libmail-dkim-perl libmail-srs-perl swaks lmdb-utils tinycdb
  ldnsutils nsd exim4-daemon-heavy libclang-rt-14-dev opendkim-tools openssl)

pkgs=("${build_pkgs[@]}")
[ "${1:-all}" = build ] || pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "tests/deps.sh: installing ${missing[*]}" >&2
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
# Packages with daemons (exim4, nsd) must not start them: tests run their own.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
