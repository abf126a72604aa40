#!/bin/bash
# run.sh: install what is missing, build postern, and start the daemon in
# the foreground on the built-in default configuration, listening on
# 127.0.0.1 port 2525 (override with PORT=...).  Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")"
tests/deps.sh build
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build
# the daemon drops privilege to exim_user (default "postern")
if [ "$(id -u)" -eq 0 ] && ! id postern >/dev/null 2>&1; then
  useradd --system --no-create-home --home-dir /var/spool/postern --shell /usr/sbin/nologin postern
fi
build/postern -bV
echo "--- expansion test: \${lc:HELLO} -> $(build/postern -be '${lc:HELLO}')"
echo "--- starting the daemon on 127.0.0.1:${PORT:-2525} (built-in configuration, queue runs every 30m)"
exec build/postern -bdf -q30m -oX "127.0.0.1.${PORT:-2525}"
